import { defineConfig } from "vitest/config"

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    // Probes PostgreSQL once: the cluster tests run, are skipped with one line, or fail the run under CI.
    globalSetup: ["test/cluster/postgres.ts"],
    testTimeout: 30_000,
    hookTimeout: 30_000
  }
})
