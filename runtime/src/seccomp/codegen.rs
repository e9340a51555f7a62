//! The classic BPF of a compiled profile: for each syscall number, an
//! answer, or choices tried in order on the arguments.
//!
//! Written here rather than by seccompiler, whose filters have one action
//! for what they match and check one syscall after the other (five
//! instructions each): docker's ~300 allowed syscalls made a
//! 1,560-instruction filter (plus one per other action) that took the
//! kernel ~0.95 ms to install, at every container start and exec (it
//! JIT-compiles the filter and runs it for every syscall number, to find
//! those it always allows). Here the syscall numbers are cut into runs with
//! one answer, searched by halves: the default profile is under 200
//! instructions, any syscall number is settled in about ten, and
//! installing it takes ~0.06 ms. seccompiler still installs the filter, and
//! the tests check this one against seccompiler's, one per action, as the
//! kernel combines them, for every syscall number.
//!
//! Layout: check the architecture (another one: KILL_PROCESS, as
//! seccompiler does), load the number (on x86_64, an x32 number, with bit
//! 30, is another ABI: KILL_PROCESS too), then a binary search over the
//! runs. A leaf returns its answer, or tries each choice (every condition
//! compared on all 64 bits, as libseccomp does) and returns the answer of
//! the first that holds, the default one if none does.
use super::SeccompError;
use super::arch::Arch;
use super::profile::{ArgCheck, CmpOp};
use seccompiler::{BpfProgram, sock_filter};
use std::collections::BTreeMap;

/// One possible answer for a syscall: `ret` when every check holds (always,
/// without checks).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Choice {
    pub checks: Vec<ArgCheck>,
    /// A `SECCOMP_RET_*` value.
    pub ret: u32,
}

/// Syscall number -> its choices, in the order they are tried. Numbers
/// absent get the default answer.
pub(super) type Plan = BTreeMap<u32, Vec<Choice>>;

/// The most conditions one rule may have (so that a rule's jumps fit the
/// 8-bit offsets of conditional jumps).
pub const MAX_CHECKS_PER_RULE: usize = 16;

/// The kernel's limit on one filter (BPF_MAXINSNS).
const MAX_INSNS: usize = 4096;

// Opcodes (linux/bpf_common.h), whole.
const LD_W_ABS: u16 = 0x20;
const ALU_AND_K: u16 = 0x54;
const JMP_JA: u16 = 0x05;
const JMP_JEQ_K: u16 = 0x15;
const JMP_JGT_K: u16 = 0x25;
const JMP_JGE_K: u16 = 0x35;
const RET_K: u16 = 0x06;

/// Offsets in `struct seccomp_data`.
const NR: u32 = 0;
const ARCH: u32 = 4;
const ARGS: u32 = 16;

/// x86_64 syscall numbers with this bit are x32's.
const X32_SYSCALL_BIT: u32 = 0x4000_0000;

fn stmt(code: u16, k: u32) -> sock_filter {
    sock_filter {
        code,
        jt: 0,
        jf: 0,
        k,
    }
}

fn jump(code: u16, k: u32, jt: u8, jf: u8) -> sock_filter {
    sock_filter { code, jt, jf, k }
}

/// What a run of syscall numbers gets.
#[derive(Debug)]
enum Leaf<'a> {
    Ret(u32),
    Choices(&'a [Choice]),
}

/// The filter of `plan`, `default` (a `SECCOMP_RET_*` value) for anything
/// it does not settle.
pub(super) fn filter(plan: &Plan, default: u32, arch: Arch) -> Result<BpfProgram, SeccompError> {
    // The runs with one answer, from number 0 on; neighbours with the same
    // answer merged.
    fn push<'a>(runs: &mut Vec<(u32, Leaf<'a>)>, start: u32, leaf: Leaf<'a>) {
        if let (Some((_, Leaf::Ret(last))), Leaf::Ret(now)) = (runs.last(), &leaf)
            && last == now
        {
            return;
        }
        runs.push((start, leaf));
    }
    let mut runs = Vec::new();
    let mut next = 0u32;
    for (nr, choices) in plan {
        if *nr > next {
            push(&mut runs, next, Leaf::Ret(default));
        }
        match choices.as_slice() {
            [] => push(&mut runs, *nr, Leaf::Ret(default)),
            [first, ..] if first.checks.is_empty() => push(&mut runs, *nr, Leaf::Ret(first.ret)),
            all => push(&mut runs, *nr, Leaf::Choices(all)),
        }
        next = nr.saturating_add(1);
    }
    push(&mut runs, next, Leaf::Ret(default));

    let kill = libc::SECCOMP_RET_KILL_PROCESS;
    let mut prog = vec![
        stmt(LD_W_ABS, ARCH),
        jump(JMP_JEQ_K, arch.audit(), 1, 0),
        stmt(RET_K, kill),
        stmt(LD_W_ABS, NR),
    ];
    if arch == Arch::X86_64 {
        prog.push(jump(JMP_JGE_K, X32_SYSCALL_BIT, 0, 1));
        prog.push(stmt(RET_K, kill));
    }
    prog.extend(search(&runs, default)?);
    if prog.len() > MAX_INSNS {
        return Err(SeccompError::Invalid(format!(
            "the profile compiles to a filter of {} BPF instructions, more than the \
             kernel's {MAX_INSNS}",
            prog.len()
        )));
    }
    Ok(prog)
}

/// A binary search over `runs` (the syscall number in A).
fn search(runs: &[(u32, Leaf<'_>)], default: u32) -> Result<Vec<sock_filter>, SeccompError> {
    if let [(_, leaf)] = runs {
        return match leaf {
            Leaf::Ret(k) => Ok(vec![stmt(RET_K, *k)]),
            Leaf::Choices(choices) => choices_code(choices, default),
        };
    }
    let mid = runs.len() / 2;
    let pivot = runs[mid].0;
    let below = search(&runs[..mid], default)?;
    let above = search(&runs[mid..], default)?;
    let mut code = Vec::with_capacity(below.len() + above.len() + 2);
    match u8::try_from(below.len()) {
        Ok(skip) => code.push(jump(JMP_JGE_K, pivot, skip, 0)),
        Err(_) => {
            // Too far for a conditional jump: through an unconditional one.
            code.push(jump(JMP_JGE_K, pivot, 0, 1));
            code.push(stmt(JMP_JA, below.len() as u32));
        }
    }
    code.extend(below);
    code.extend(above);
    Ok(code)
}

/// Each choice in turn: its checks, then its answer; a failed check skips
/// to the next choice; after the last, the default answer (unless the last
/// has no checks).
fn choices_code(choices: &[Choice], default: u32) -> Result<Vec<sock_filter>, SeccompError> {
    let mut code = Vec::new();
    for choice in choices {
        let checks = &choice.checks;
        if checks.len() > MAX_CHECKS_PER_RULE {
            return Err(SeccompError::Invalid(format!(
                "a rule has {} argument conditions: at most {MAX_CHECKS_PER_RULE} are supported",
                checks.len()
            )));
        }
        let len: usize = checks.iter().map(|c| check_len(c.op)).sum::<usize>() + 1;
        let mut at = 0;
        for c in checks {
            code.extend(check_code(c, len - at));
            at += check_len(c.op);
        }
        code.push(stmt(RET_K, choice.ret));
        if checks.is_empty() {
            return Ok(code);
        }
    }
    code.push(stmt(RET_K, default));
    Ok(code)
}

fn check_len(op: CmpOp) -> usize {
    match op {
        CmpOp::Eq | CmpOp::Ne => 4,
        CmpOp::Gt | CmpOp::Ge | CmpOp::Lt | CmpOp::Le => 5,
        CmpOp::MaskedEq => 6,
    }
}

/// One check: falls through when it holds, jumps to `to_end` instructions
/// past its own first one (the rule's end) when it does not.
fn check_code(c: &ArgCheck, to_end: usize) -> Vec<sock_filter> {
    // Offsets from instruction q of the check to the rule's end.
    let fail = |q: usize| (to_end - q - 1) as u8;
    let lo_at = ARGS + 8 * u32::from(c.index);
    let hi_at = lo_at + 4;
    let (hi, lo) = ((c.value >> 32) as u32, c.value as u32);
    let ld = |at| stmt(LD_W_ABS, at);
    match c.op {
        // hi == v.hi && lo == v.lo
        CmpOp::Eq => vec![
            ld(hi_at),
            jump(JMP_JEQ_K, hi, 0, fail(1)),
            ld(lo_at),
            jump(JMP_JEQ_K, lo, 0, fail(3)),
        ],
        // hi != v.hi || lo != v.lo
        CmpOp::Ne => vec![
            ld(hi_at),
            jump(JMP_JEQ_K, hi, 0, 2),
            ld(lo_at),
            jump(JMP_JEQ_K, lo, fail(3), 0),
        ],
        // hi > v.hi || (hi == v.hi && lo > v.lo), or lo >= v.lo for Ge
        CmpOp::Gt | CmpOp::Ge => vec![
            ld(hi_at),
            jump(JMP_JGT_K, hi, 3, 0),
            jump(JMP_JEQ_K, hi, 0, fail(2)),
            ld(lo_at),
            jump(
                if c.op == CmpOp::Gt {
                    JMP_JGT_K
                } else {
                    JMP_JGE_K
                },
                lo,
                0,
                fail(4),
            ),
        ],
        // hi < v.hi || (hi == v.hi && lo < v.lo), or lo <= v.lo for Le
        CmpOp::Lt | CmpOp::Le => vec![
            ld(hi_at),
            jump(JMP_JGT_K, hi, fail(1), 0),
            jump(JMP_JEQ_K, hi, 0, 2),
            ld(lo_at),
            jump(
                if c.op == CmpOp::Lt {
                    JMP_JGE_K
                } else {
                    JMP_JGT_K
                },
                lo,
                fail(4),
                0,
            ),
        ],
        // (arg & value) == value_two: never, where value_two has bits
        // outside the mask (as with libseccomp).
        CmpOp::MaskedEq => {
            let (mhi, mlo) = ((c.value >> 32) as u32, c.value as u32);
            let (dhi, dlo) = ((c.value_two >> 32) as u32, c.value_two as u32);
            vec![
                ld(hi_at),
                stmt(ALU_AND_K, mhi),
                jump(JMP_JEQ_K, dhi, 0, fail(2)),
                ld(lo_at),
                stmt(ALU_AND_K, mlo),
                jump(JMP_JEQ_K, dlo, 0, fail(5)),
            ]
        }
    }
}
