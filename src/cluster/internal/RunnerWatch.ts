/**
 * Monitoring of a cluster Env's runners, from the caller: about once a
 * second (`intervalMillis`) it reads the runners' rows of the runner-load
 * table (src/cluster/RunnerLoad.ts), which every runner rewrites every
 * second with its load, its identity (pid, host, address) and the totals of
 * the calls its Workers made, and
 *
 * - merges what each runner's totals add since the previous reading into
 *   the caller's Recorder, as the calls of the cluster Env
 *   (`caller="<cluster env>"`), and its entity counts as the Workers'
 *   instances and mailboxes;
 * - shows each runner as a slot of the Env (`corps_env_slot_*` gauges, and
 *   the dashboard's Monitor when there is one): `serving` while it reports,
 *   `stopped` once its row is older than `freshMillis` or gone.
 *
 * Runs only while metrics are on. Slots are numbered in the order runners
 * are first seen, and a runner keeps its index for the caller's lifetime.
 */
import { Effect, Schedule, type Scope } from "effect"
import type { SqlClient } from "effect/sql"
import type { Recorder } from "../../internal/recorder.ts"
import type { MonitorState } from "../../monitoring/Monitor.ts"
import * as Metrics from "../../monitoring/metrics.ts"
import * as RunnerLoad from "../RunnerLoad.ts"
import { since } from "./RunnerFigures.ts"

/** What the caller knows of one runner. */
interface RunnerView {
  readonly index: number
  readonly address: string
  state: "serving" | "stopped"
  report: RunnerLoad.Report | undefined
  /** The totals of the previous reading (what the next one is compared with). */
  previous: RunnerLoad.Figures | undefined
  restarts: number
}

/** Watches the runners of a cluster Env until the scope closes. */
export const watch = (options: {
  readonly envName: string
  readonly corpsId: string
  readonly corpsName: string
  readonly prefix: string | undefined
  readonly recorder: Recorder
  readonly intervalMillis: number
  /** The dashboard's Monitor, when there is one: runners show as the Env's slots. */
  readonly monitor: MonitorState | undefined
  /** A row older than this is a runner gone (default 5000, as `RunnerLoad.read`). */
  readonly freshMillis?: number | undefined
}): Effect.Effect<void, never, Scope.Scope | SqlClient.SqlClient> =>
  Effect.gen(function* () {
    const { envName, recorder } = options
    const views: Array<RunnerView> = []
    const byAddress = new Map<string, RunnerView>()
    const slotKey = (index: number) => `${envName}#${index}`

    const add = (address: string): RunnerView => {
      const view: RunnerView = {
        index: views.length,
        address,
        state: "serving",
        report: undefined,
        previous: undefined,
        restarts: 0
      }
      views.push(view)
      byAddress.set(address, view)
      const attributes = {
        [Metrics.Attribute.corps]: options.corpsName,
        [Metrics.Attribute.env]: envName,
        [Metrics.Attribute.index]: String(view.index)
      }
      for (const state of Metrics.slotStates)
        recorder.registerGauge(Metrics.slotState, { ...attributes, [Metrics.Attribute.state]: state }, () =>
          view.state === state ? 1 : 0
        )
      recorder.registerGauge(Metrics.slotPid, attributes, () => view.report?.pid ?? 0)
      // A runner serves on its process' main thread.
      recorder.registerGauge(Metrics.slotThreadId, attributes, () => 0)
      recorder.registerGauge(Metrics.slotUtilization, attributes, () =>
        view.state === "serving" ? (view.report?.utilization ?? 0) : 0
      )
      recorder.registerGauge(Metrics.slotHeapUsed, attributes, () =>
        view.state === "serving" ? (view.report?.heapUsed ?? 0) : 0
      )
      recorder.registerCounter(Metrics.slotRestarts, attributes, () => view.restarts)
      return view
    }

    const read = RunnerLoad.reader({ prefix: options.prefix, freshMillis: options.freshMillis })
    const collect = Effect.map(read, (reports) => {
      const seen = new Set<string>()
      for (const report of reports) {
        seen.add(report.runner)
        const view = byAddress.get(report.runner) ?? add(report.runner)
        // Another process at the same address (a runner restarted): its totals start again from zero.
        if (view.report !== undefined && view.report.startedAt !== report.startedAt) {
          view.previous = undefined
          view.restarts++
        }
        view.state = "serving"
        view.report = report
        if (report.figures !== undefined) {
          recorder.merge(envName, slotKey(view.index), since(view.previous, report.figures, envName))
          view.previous = report.figures
        }
      }
      for (const view of views) {
        if (seen.has(view.address) || view.state === "stopped") continue
        view.state = "stopped"
        recorder.forgetSlot(slotKey(view.index))
      }
    })
    // A failed read (the database briefly away) is skipped: the next comes an interval later.
    yield* Effect.forkScoped(Effect.repeat(Effect.ignore(collect), Schedule.spaced(options.intervalMillis)))

    if (options.monitor !== undefined) {
      yield* options.monitor.addEnv(options.corpsId, {
        name: envName,
        kind: "cluster",
        size: () => views.length,
        slot: (index) => {
          const view = views[index]
          if (view === undefined) return undefined
          return {
            // Which runner serves a call is the cluster's choice: the caller does not count per runner.
            inFlight: 0,
            closeReason: view.state === "stopped" ? "no report from the runner (stopped or unreachable)" : undefined,
            address: view.address,
            ...(view.report === undefined || view.report.host === "" ? {} : { host: view.report.host })
          }
        }
      })
    }
  })
