/**
 * Starts program B then program A (two separate Node processes), waits for A
 * to finish, stops B. Output (A's log lines):
 *
 *   7² = 49
 *   12² = 144
 *   5000² failed with TooBig (n=5000)
 *   squares streamed from B: 1, 4, 9, 16, 25
 *   A's ledger, written by B: ["B squared 7","B squared 12"]
 *
 * Run with `npm run example:two-programs`.
 */
import { spawn } from "node:child_process"
import { fileURLToPath } from "node:url"

const here = (file: string) => fileURLToPath(new URL(file, import.meta.url))
const env = { ...process.env, A_PORT: process.env.A_PORT ?? "47611", B_PORT: process.env.B_PORT ?? "47612" }

const b = spawn(process.execPath, [here("./b.ts")], { env, stdio: "inherit" })
const a = spawn(process.execPath, [here("./a.ts")], { env, stdio: "inherit" })
a.once("exit", (code) => {
  b.kill("SIGKILL")
  process.exit(code ?? 1)
})
