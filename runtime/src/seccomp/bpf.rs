//! Runs filters the way the kernel does, on one syscall (tests only): what
//! a filter answers, and what several installed filters answer together.
//! The tests check what compiled profiles allow with it, and compare
//! Quilt's filters with seccompiler's.
use seccompiler::sock_filter;

/// One syscall as a filter sees it (`struct seccomp_data`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SyscallData {
    pub nr: i32,
    /// `AUDIT_ARCH_*`.
    pub arch: u32,
    pub instruction_pointer: u64,
    pub args: [u64; 6],
}

impl SyscallData {
    /// The 32-bit word at byte `offset` of `struct seccomp_data` (native
    /// little-endian layout: the low half of a 64-bit field first).
    fn word(&self, offset: u32) -> Option<u32> {
        let half = |v: u64, high: bool| if high { (v >> 32) as u32 } else { v as u32 };
        match offset {
            0 => Some(self.nr as u32),
            4 => Some(self.arch),
            8 | 12 => Some(half(self.instruction_pointer, offset == 12)),
            16..=60 if offset.is_multiple_of(4) => {
                let i = ((offset - 16) / 8) as usize;
                Some(half(self.args[i], !(offset - 16).is_multiple_of(8)))
            }
            _ => None,
        }
    }
}

// Opcodes (linux/bpf_common.h), whole: class | size | mode | op | source.
const LD_W_ABS: u16 = 0x20;
const LD_IMM: u16 = 0x00;
const ALU_AND_K: u16 = 0x54;
const ALU_OR_K: u16 = 0x44;
const JMP_JA: u16 = 0x05;
const JMP_JEQ_K: u16 = 0x15;
const JMP_JGT_K: u16 = 0x25;
const JMP_JGE_K: u16 = 0x35;
const JMP_JSET_K: u16 = 0x45;
const RET_K: u16 = 0x06;
const RET_A: u16 = 0x16;

/// What `prog` answers for `data` (a `SECCOMP_RET_*` value); None for an
/// instruction this interpreter does not know, a load out of
/// `seccomp_data`, or a jump out of the program.
pub fn run(prog: &[sock_filter], data: &SyscallData) -> Option<u32> {
    run_counted(prog, data).map(|(ret, _)| ret)
}

/// `run`, with the number of instructions it went through.
pub fn run_counted(prog: &[sock_filter], data: &SyscallData) -> Option<(u32, usize)> {
    let mut a: u32 = 0;
    let mut pc = 0usize;
    let mut steps = 0;
    loop {
        let ins = prog.get(pc)?;
        steps += 1;
        let jump = |taken: bool| pc + 1 + usize::from(if taken { ins.jt } else { ins.jf });
        pc = match ins.code {
            LD_W_ABS => {
                a = data.word(ins.k)?;
                pc + 1
            }
            LD_IMM => {
                a = ins.k;
                pc + 1
            }
            ALU_AND_K => {
                a &= ins.k;
                pc + 1
            }
            ALU_OR_K => {
                a |= ins.k;
                pc + 1
            }
            JMP_JA => pc + 1 + usize::try_from(ins.k).ok()?,
            JMP_JEQ_K => jump(a == ins.k),
            JMP_JGT_K => jump(a > ins.k),
            JMP_JGE_K => jump(a >= ins.k),
            JMP_JSET_K => jump(a & ins.k != 0),
            RET_K => return Some((ins.k, steps)),
            RET_A => return Some((a, steps)),
            _ => return None,
        };
    }
}

/// The action part of an answer, ordered as the kernel orders them: the
/// smaller, the more restrictive (KILL_PROCESS is negative).
fn action_only(ret: u32) -> i32 {
    (ret & libc::SECCOMP_RET_ACTION_FULL) as i32
}

/// What the kernel answers once `filters` are installed, in this order:
/// the most restrictive answer, and among equally restrictive ones that of
/// the filter installed last. None if a filter cannot be run here.
pub fn combined(filters: &[Vec<sock_filter>], data: &SyscallData) -> Option<u32> {
    let mut ret = libc::SECCOMP_RET_ALLOW;
    for f in filters.iter().rev() {
        let r = run(f, data)?;
        if action_only(r) < action_only(ret) {
            ret = r;
        }
    }
    Some(ret)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ins(code: u16, jt: u8, jf: u8, k: u32) -> sock_filter {
        sock_filter { code, jt, jf, k }
    }

    fn data(nr: i32, arg0: u64) -> SyscallData {
        SyscallData {
            nr,
            arch: 0xC000_003E,
            instruction_pointer: 0x1234_5678_9abc,
            args: [arg0, 0, 0, 0, 0, 0],
        }
    }

    #[test]
    fn runs_loads_jumps_and_returns() {
        // nr == 7 && (arg0 high word & 0xf0) != 0 -> ERRNO(5), else ALLOW.
        let prog = [
            ins(LD_W_ABS, 0, 0, 0),
            ins(JMP_JEQ_K, 0, 3, 7),
            ins(LD_W_ABS, 0, 0, 20),
            ins(JMP_JSET_K, 0, 1, 0xf0),
            ins(RET_K, 0, 0, libc::SECCOMP_RET_ERRNO | 5),
            ins(RET_K, 0, 0, libc::SECCOMP_RET_ALLOW),
        ];
        assert_eq!(
            run(&prog, &data(7, 0x10 << 32)),
            Some(libc::SECCOMP_RET_ERRNO | 5)
        );
        assert_eq!(run(&prog, &data(7, 0x10)), Some(libc::SECCOMP_RET_ALLOW));
        assert_eq!(
            run(&prog, &data(8, 0x10 << 32)),
            Some(libc::SECCOMP_RET_ALLOW)
        );
        // Falling off the end, loading past seccomp_data, unknown opcodes.
        assert_eq!(run(&prog[..2], &data(8, 0)), None);
        assert_eq!(run(&[ins(LD_W_ABS, 0, 0, 64)], &data(0, 0)), None);
        assert_eq!(run(&[ins(0x07, 0, 0, 0)], &data(0, 0)), None);
        let d = data(0, 0);
        assert_eq!(d.word(8), Some(0x5678_9abc));
        assert_eq!(d.word(12), Some(0x1234));
        assert_eq!(d.word(6), None);
    }

    #[test]
    fn combined_keeps_the_most_restrictive_then_the_latest() {
        let ret = |k: u32| vec![ins(RET_K, 0, 0, k)];
        let d = data(0, 0);
        let allow = ret(libc::SECCOMP_RET_ALLOW);
        let eperm = ret(libc::SECCOMP_RET_ERRNO | 1);
        let enosys = ret(libc::SECCOMP_RET_ERRNO | 38);
        let kill = ret(libc::SECCOMP_RET_KILL_PROCESS);
        let log = ret(libc::SECCOMP_RET_LOG);
        assert_eq!(combined(&[], &d), Some(libc::SECCOMP_RET_ALLOW));
        assert_eq!(
            combined(&[allow.clone(), eperm.clone()], &d),
            Some(libc::SECCOMP_RET_ERRNO | 1)
        );
        assert_eq!(
            combined(&[eperm.clone(), enosys.clone()], &d),
            Some(libc::SECCOMP_RET_ERRNO | 38)
        );
        assert_eq!(
            combined(&[enosys, eperm.clone()], &d),
            Some(libc::SECCOMP_RET_ERRNO | 1)
        );
        assert_eq!(
            combined(&[kill, eperm, log.clone()], &d),
            Some(libc::SECCOMP_RET_KILL_PROCESS)
        );
        assert_eq!(combined(&[allow, log], &d), Some(libc::SECCOMP_RET_LOG));
    }
}
