/** Rootless mode: kiln as an ordinary user, inside a user namespace mapped from /etc/subuid and /etc/subgid. */
export { wantsUserNamespace, runInUserNamespace, planMapping, singleIdNotice, userNamespaceBlocker, type MappingPlan } from './reexec.js';
export { rootlessSession, mappedSpan, overlayXattrPrefix, isHostRoot, maskedProcPath, NO_PROCESS_SANDBOX_ENV, SESSION_ENV, type RootlessSession, type IdMapping } from './session.js';
export { parseSubIds, readSubIds, type IdRange } from './subids.js';
export { rootlessFailure, assertMappedOwner } from './failures.js';
