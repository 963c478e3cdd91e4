export { runChecks, parseCheckConfig, hasCheckErrors, type CheckOptions } from './run.js';
export { RULES, RULE_NAMES, ruleInfo, type RuleInfo } from './rules.js';
export { isSecretName, secretLikeValue } from './secrets.js';
