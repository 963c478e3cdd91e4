/**
 * frontend/ — the Dockerfile as data: the syntax tree (directives, line
 * continuations, heredocs), typed instructions with their source ranges, shell
 * word expansion, variable scopes and the build checks (`kiln check`). It does
 * no I/O beyond reading the Dockerfile it is given.
 * May import: errors/, sandbox/ (the network-mode names RUN --network accepts), spec/.
 */
export * from './instructions.js';
export { parseDockerfile, toInstruction } from './parse.js';
export { expandInstruction, type ExpandOptions } from './expand.js';
export { processWord, processWords, toLookup, type ProcessOptions, type VarLookup } from './shell-lex.js';
export { parseSyntaxTree, type SyntaxNode, type SyntaxTree } from './syntax-tree.js';
export { dumpNodes, goQuote } from './dump.js';
export { parseMount } from './mount.js';
export { parseGoDuration } from './duration.js';
export { VarScope, type VarScopeInit, type StepVars } from './var-scope.js';
export { PLATFORM_ARGS, PROXY_ARGS, isPlatformArg, isPredefinedArg, isProxyArg } from './builtin-args.js';
export { runChecks, parseCheckConfig, hasCheckErrors, RULES, ruleInfo, type CheckOptions, type RuleInfo } from './check/index.js';
export { loadDockerfile, type LoadedDockerfile } from './load.js';
export { DockerfileError, type TokenRef } from './dockerfile-error.js';
