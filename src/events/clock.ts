/**
 * Milliseconds on a monotonic clock, for the durations step events carry (hashing, running, the
 * layer). `process.hrtime` rather than the global `performance`: its first use loads perf_hooks,
 * nine modules and about a millisecond, which every cached build with a COPY paid for one reading.
 */
export function monotonicMs(): number {
  return Number(process.hrtime.bigint()) / 1e6;
}
