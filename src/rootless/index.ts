/**
 * rootless/ — kiln as an ordinary user: re-exec inside a user namespace mapped
 * from /etc/subuid and /etc/subgid, the session the other folders consult
 * (mapped ids, overlay xattr prefix, masked /proc), and the one-line errors
 * for each missing prerequisite.
 * May import: errors/.
 */
export { wantsUserNamespace, runInUserNamespace, planMapping, singleIdNotice, userNamespaceBlocker, type MappingPlan } from './reexec.js';
export { rootlessSession, mappedSpan, overlayXattrPrefix, isHostRoot, maskedProcPath, NO_PROCESS_SANDBOX_ENV, SESSION_ENV, type RootlessSession, type IdMapping } from './session.js';
export { parseSubIds, readSubIds, type IdRange } from './subids.js';
export { rootlessFailure, assertMappedOwner } from './failures.js';
