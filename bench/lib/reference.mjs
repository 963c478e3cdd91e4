// What the figures are judged against: BuildKit measured in the same run (never figures from
// another day), and the goals of the performance issue, which are ratios kiln ÷ BuildKit.
export const PHASES = ['cold', 'warm', 'onefile'];
export const PHASE_LABEL = { cold: 'cold', warm: 'warm', onefile: '1-file', buildPush: 'build+push' };

/** kiln ÷ BuildKit in the same run, per phase; build + push of big-layer has its own, stricter goal. */
export const RATIO_GOAL = { cold: 1.0, warm: 1.0, onefile: 1.0 };
export const PUSH_RATIO_GOAL = 0.5;
export const RSS_GOAL_MB = 200;
/** A measurement whose max ÷ min exceeds this is flagged: too noisy to trust its median. */
export const SPREAD_LIMIT = 1.5;
export const PUSH_BENCHES = new Set(['big-layer']);
