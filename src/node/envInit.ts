/**
 * The control calls between a caller and its Envs, and what an Env is told
 * when it starts. Control calls are ordinary calls (`Wire.Call`) to a
 * pseudo-Worker, answered with a `Wire.Exit`.
 */

import type { EnvMonitoring } from "../internal/monitoring.ts"

/**
 * The pseudo-Worker of control calls (`ready`, `shutdown`, `ping` for
 * heartbeats, `adopt` telling a spare its slot, `load` sampling its
 * load: src/node/load.ts, `passivate` draining its idle Conc instances,
 * `release` draining it for scaling down: src/node/scaler.ts; from an Env
 * to its caller, `event` carrying a CorpsEvent; `metrics` collecting its
 * monitoring figures: src/node/monitor.ts): no user Worker can have
 * this name.
 */
export const CONTROL = "$corps"

/** What an Env is told when it starts. */
export interface EnvInit {
  readonly corps: string
  readonly module: string
  readonly envName: string
  /** The Env's slot in its pool; -1 for a warm spare, which is told its slot when it takes over (`adopt`). */
  readonly index: number
  /** The Workers to build in this Env; every other exported Worker is reached through the caller. */
  readonly workers: ReadonlyArray<string>
  /**
   * For each Conc placed here, the Envs (indexes) that hold its instances:
   * keys of the others go through the caller. `"directory"` in a scaling
   * Env: the caller places each key (src/node/directory.ts), and this Env
   * serves a key locally only once the caller has sent it a call for it.
   */
  readonly hosts: Readonly<Record<string, ReadonlyArray<number> | "directory">>
  /** Workers whose handles carry another id than the Corps' (cluster Workers): the Env's handles must match. */
  readonly handleCorps: Readonly<Record<string, string>>
  /** Monitoring is on (`Monitoring.layer`): what to record and where to export spans. */
  readonly monitoring?: EnvMonitoring | undefined
  /** Where every Worker of the Corps can hold instances (`Worker.create` inside this Env reads it). */
  readonly locations?: Readonly<Record<string, Location>> | undefined
}

import type { Location } from "../internal/create.ts"

/** The environment variable a child process finds its EnvInit in. */
export const INIT_VARIABLE = "CORPS_ENV_INIT"
