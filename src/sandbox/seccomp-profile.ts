/**
 * kiln's seccomp profile, built in: the semantics of Docker's default profile
 * (moby profiles/seccomp/default.json), in Docker's conditional format —
 * rules that apply only with a capability, on an architecture, or from a
 * kernel version — which `toOciSeccomp` (seccomp.ts) reduces to the OCI form
 * for one RUN.
 *
 * What it means in practice, as in Docker: everything not listed fails with
 * EPERM; without CAP_SYS_ADMIN (never in kiln's default set) a RUN cannot
 * create namespaces (unshare, setns, clone with namespace flags; clone3 fails
 * with ENOSYS so libc falls back to clone), mount anything (mount, the new
 * mount API, umount), load BPF programs or use perf events; the kernel
 * keyring (add_key, keyctl, request_key), kexec, module loading, swap,
 * reboot, clock setting, userfaultfd and io_uring are refused, and
 * personality() accepts only the values programs use to query or select the
 * plain Linux personality.
 *
 * Written from the profile's documented behaviour; the syscall names are the
 * kernel's. Names the runtime's libseccomp does not know are skipped by it.
 */

export interface SeccompArg {
  index: number;
  value: number;
  valueTwo?: number;
  op: 'SCMP_CMP_EQ' | 'SCMP_CMP_NE' | 'SCMP_CMP_LT' | 'SCMP_CMP_LE' | 'SCMP_CMP_GT' | 'SCMP_CMP_GE' | 'SCMP_CMP_MASKED_EQ';
}

/** Go architecture names, as Docker's profile conditions use them. */
export type ProfileArch = 'amd64' | 'x86' | 'x32' | 'arm64' | 'arm' | 'ppc64le' | 's390' | 's390x' | 'riscv64';

export interface SeccompRule {
  names: string[];
  action: 'SCMP_ACT_ALLOW' | 'SCMP_ACT_ERRNO';
  errnoRet?: number;
  args?: SeccompArg[];
  /** All must hold: every cap present, the arch listed, the kernel at least this version. */
  includes?: { caps?: string[]; arches?: ProfileArch[]; minKernel?: string };
  /** None may hold: no listed cap present, the arch not listed. */
  excludes?: { caps?: string[]; arches?: ProfileArch[] };
}

export interface SeccompProfile {
  defaultAction: 'SCMP_ACT_ERRNO';
  defaultErrnoRet: number;
  /** Per native architecture, the ABIs its kernel also runs (32-bit compat). */
  archMap: Array<{ architecture: string; subArchitectures: string[] }>;
  syscalls: SeccompRule[];
}

const EPERM = 1;
const ENOSYS = 38;

/** The namespace flags of clone(2): CLONE_NEWNS|NEWCGROUP|NEWUTS|NEWIPC|NEWUSER|NEWPID|NEWNET. */
export const CLONE_NAMESPACE_FLAGS = 0x00020000 | 0x02000000 | 0x04000000 | 0x08000000 | 0x10000000 | 0x20000000 | 0x40000000;

/** socket() may create every address family but AF_ALG (the kernel's crypto API) and AF_VSOCK (a path to the hypervisor host). */
const AF_ALG = 38;
const AF_NFC = 39;
const AF_VSOCK = 40;

/** personality(2) values programs use: PER_LINUX, PER_LINUX32, UNAME26, UNAME26|PER_LINUX32, and 0xffffffff (query). */
const PERSONALITIES = [0x0, 0x8, 0x20000, 0x20008, 0xffffffff];

/** Plain process work: files, memory, signals, time, sockets (families checked below), IPC, scheduling of itself. */
const ALWAYS = `
accept accept4 access adjtimex alarm bind brk cachestat capget capset chdir chmod chown chown32
clock_adjtime clock_adjtime64 clock_getres clock_getres_time64 clock_gettime clock_gettime64 clock_nanosleep clock_nanosleep_time64
close close_range connect copy_file_range creat dup dup2 dup3
epoll_create epoll_create1 epoll_ctl epoll_ctl_old epoll_pwait epoll_pwait2 epoll_wait epoll_wait_old eventfd eventfd2
execve execveat exit exit_group faccessat faccessat2 fadvise64 fadvise64_64 fallocate fanotify_mark
fchdir fchmod fchmodat fchmodat2 fchown fchown32 fchownat fcntl fcntl64 fdatasync fgetxattr flistxattr flock fork fremovexattr fsetxattr
fstat fstat64 fstatat64 fstatfs fstatfs64 fsync ftruncate ftruncate64
futex futex_requeue futex_time64 futex_wait futex_waitv futex_wake futimesat
getcpu getcwd getdents getdents64 getegid getegid32 geteuid geteuid32 getgid getgid32 getgroups getgroups32 getitimer
getpeername getpgid getpgrp getpid getppid getpriority getrandom getresgid getresgid32 getresuid getresuid32 getrlimit get_robust_list
getrusage getsid getsockname getsockopt get_thread_area gettid gettimeofday getuid getuid32 getxattr getxattrat
inotify_add_watch inotify_init inotify_init1 inotify_rm_watch
io_cancel ioctl io_destroy io_getevents io_pgetevents io_pgetevents_time64 ioprio_get ioprio_set io_setup io_submit ipc kill
landlock_add_rule landlock_create_ruleset landlock_restrict_self lchown lchown32 lgetxattr link linkat listen listmount listxattr listxattrat
llistxattr _llseek lremovexattr lseek lsetxattr lstat lstat64
madvise map_shadow_stack membarrier memfd_create memfd_secret mincore mkdir mkdirat mknod mknodat mlock mlock2 mlockall mmap mmap2 mprotect
mq_getsetattr mq_notify mq_open mq_timedreceive mq_timedreceive_time64 mq_timedsend mq_timedsend_time64 mq_unlink
mremap mseal msgctl msgget msgrcv msgsnd msync munlock munlockall munmap
name_to_handle_at nanosleep newfstatat _newselect open openat openat2 pause pidfd_open pidfd_send_signal pipe pipe2
pkey_alloc pkey_free pkey_mprotect poll ppoll ppoll_time64 prctl pread64 preadv preadv2 prlimit64 process_mrelease
pselect6 pselect6_time64 pwrite64 pwritev pwritev2
read readahead readlink readlinkat readv recv recvfrom recvmmsg recvmmsg_time64 recvmsg remap_file_pages removexattr removexattrat
rename renameat renameat2 restart_syscall riscv_hwprobe rmdir rseq
rt_sigaction rt_sigpending rt_sigprocmask rt_sigqueueinfo rt_sigreturn rt_sigsuspend rt_sigtimedwait rt_sigtimedwait_time64 rt_tgsigqueueinfo
sched_getaffinity sched_getattr sched_getparam sched_get_priority_max sched_get_priority_min sched_getscheduler
sched_rr_get_interval sched_rr_get_interval_time64 sched_setaffinity sched_setattr sched_setparam sched_setscheduler sched_yield
seccomp select semctl semget semop semtimedop semtimedop_time64 send sendfile sendfile64 sendmmsg sendmsg sendto
setfsgid setfsgid32 setfsuid setfsuid32 setgid setgid32 setgroups setgroups32 setitimer setpgid setpriority
setregid setregid32 setresgid setresgid32 setresuid setresuid32 setreuid setreuid32 setrlimit set_robust_list setsid setsockopt
set_thread_area set_tid_address setuid setuid32 setxattr setxattrat shmat shmctl shmdt shmget shutdown sigaltstack
signalfd signalfd4 sigprocmask sigreturn socketcall socketpair splice stat stat64 statfs statfs64 statmount statx
symlink symlinkat sync sync_file_range syncfs sysinfo tee tgkill time
timer_create timer_delete timer_getoverrun timer_gettime timer_gettime64 timer_settime timer_settime64
timerfd_create timerfd_gettime timerfd_gettime64 timerfd_settime timerfd_settime64 times tkill truncate truncate64
ugetrlimit umask uname unlink unlinkat uretprobe utime utimensat utimensat_time64 utimes
vfork vmsplice wait4 waitid waitpid write writev
`;

const words = (s: string): string[] => s.split(/\s+/).filter(Boolean);

/** With CAP_SYS_ADMIN only: namespaces, mounts, BPF, perf, quotas, host and domain names, fanotify groups. */
const SYS_ADMIN = words(`
bpf clone clone3 fanotify_init fsconfig fsmount fsopen fspick lookup_dcookie lsm_get_self_attr lsm_list_modules lsm_set_self_attr
mount mount_setattr move_mount open_tree perf_event_open quotactl quotactl_fd setdomainname sethostname setns syslog umount umount2 unshare
`);

const allow = (names: string[], extra: Omit<SeccompRule, 'names' | 'action'> = {}): SeccompRule => ({ names, action: 'SCMP_ACT_ALLOW', ...extra });
const withCap = (cap: string, names: string[]): SeccompRule => allow(names, { includes: { caps: [cap] } });

export const DEFAULT_SECCOMP_PROFILE: SeccompProfile = {
  defaultAction: 'SCMP_ACT_ERRNO',
  defaultErrnoRet: EPERM,
  archMap: [
    { architecture: 'SCMP_ARCH_X86_64', subArchitectures: ['SCMP_ARCH_X86', 'SCMP_ARCH_X32'] },
    { architecture: 'SCMP_ARCH_AARCH64', subArchitectures: ['SCMP_ARCH_ARM'] },
    { architecture: 'SCMP_ARCH_PPC64LE', subArchitectures: [] },
    { architecture: 'SCMP_ARCH_S390X', subArchitectures: ['SCMP_ARCH_S390'] },
    { architecture: 'SCMP_ARCH_RISCV64', subArchitectures: [] },
  ],
  syscalls: [
    allow(words(ALWAYS)),
    // tracing a process of the same container is safe from 4.8 on (seccomp is re-checked after ptrace changes a syscall)
    allow(['process_vm_readv', 'process_vm_writev', 'ptrace'], { includes: { minKernel: '4.8' } }),
    allow(['socket'], { args: [{ index: 0, value: AF_ALG, op: 'SCMP_CMP_LT' }] }),
    allow(['socket'], { args: [{ index: 0, value: AF_NFC, op: 'SCMP_CMP_EQ' }] }),
    allow(['socket'], { args: [{ index: 0, value: AF_VSOCK, op: 'SCMP_CMP_GT' }] }),
    ...PERSONALITIES.map((p) => allow(['personality'], { args: [{ index: 0, value: p, op: 'SCMP_CMP_EQ' }] })),
    // architecture-specific calls
    allow(['sync_file_range2', 'swapcontext'], { includes: { arches: ['ppc64le'] } }),
    allow(['arm_fadvise64_64', 'arm_sync_file_range', 'sync_file_range2', 'breakpoint', 'cacheflush', 'set_tls'], { includes: { arches: ['arm', 'arm64'] } }),
    allow(['arch_prctl'], { includes: { arches: ['amd64', 'x32'] } }),
    allow(['modify_ldt'], { includes: { arches: ['amd64', 'x32', 'x86'] } }),
    allow(['s390_pci_mmio_read', 's390_pci_mmio_write', 's390_runtime_instr'], { includes: { arches: ['s390', 's390x'] } }),
    allow(['riscv_flush_icache'], { includes: { arches: ['riscv64'] } }),
    // calls a capability unlocks
    withCap('CAP_DAC_READ_SEARCH', ['open_by_handle_at']),
    withCap('CAP_SYS_ADMIN', SYS_ADMIN),
    // without SYS_ADMIN: clone without namespace flags (s390 swaps the first two arguments)
    allow(['clone'], { args: [{ index: 0, value: CLONE_NAMESPACE_FLAGS, valueTwo: 0, op: 'SCMP_CMP_MASKED_EQ' }], excludes: { caps: ['CAP_SYS_ADMIN'], arches: ['s390', 's390x'] } }),
    allow(['clone'], { args: [{ index: 1, value: CLONE_NAMESPACE_FLAGS, valueTwo: 0, op: 'SCMP_CMP_MASKED_EQ' }], includes: { arches: ['s390', 's390x'] }, excludes: { caps: ['CAP_SYS_ADMIN'] } }),
    // clone3 passes its flags in memory seccomp cannot read: ENOSYS makes libc fall back to clone
    { names: ['clone3'], action: 'SCMP_ACT_ERRNO', errnoRet: ENOSYS, excludes: { caps: ['CAP_SYS_ADMIN'] } },
    withCap('CAP_SYS_BOOT', ['reboot']),
    withCap('CAP_SYS_CHROOT', ['chroot']),
    withCap('CAP_SYS_MODULE', ['delete_module', 'init_module', 'finit_module']),
    withCap('CAP_SYS_PACCT', ['acct']),
    withCap('CAP_SYS_PTRACE', ['kcmp', 'pidfd_getfd', 'process_madvise', 'process_vm_readv', 'process_vm_writev', 'ptrace']),
    withCap('CAP_SYS_RAWIO', ['iopl', 'ioperm']),
    withCap('CAP_SYS_TIME', ['settimeofday', 'stime', 'clock_settime', 'clock_settime64']),
    withCap('CAP_SYS_TTY_CONFIG', ['vhangup']),
    withCap('CAP_SYS_NICE', ['get_mempolicy', 'mbind', 'set_mempolicy', 'set_mempolicy_home_node']),
    withCap('CAP_SYSLOG', ['syslog']),
    withCap('CAP_BPF', ['bpf']),
    withCap('CAP_PERFMON', ['perf_event_open']),
  ],
};
