import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 30_000,
    hookTimeout: 60_000,
    // Lab tests measure real timing-dependent behaviour (coalescing, retransmission timers) on a
    // 2-core machine: one test file at a time keeps them from competing for the CPU.
    fileParallelism: false,
  },
});
