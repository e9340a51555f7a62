//! Cgroup v2 has no devices controller: device access is decided by a
//! BPF_CGROUP_DEVICE program attached to the cgroup. This file generates
//! that program from an allow-list (a few compare-and-jump instructions per
//! rule), loads it and attaches it to the container's cgroup. The program
//! lives as long as the cgroup: once the cgroup is removed, the kernel
//! detaches and frees it (no descriptor of it is kept anywhere).
use super::devices::DeviceRule;
use super::{CgroupError, io_err};
use crate::spec::DeviceKind;
use std::io::ErrorKind;
use std::os::fd::AsFd;
use std::path::Path;

/// One instruction (`struct bpf_insn`): opcode, registers, offset, immediate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Insn {
    code: u8,
    dst: u8,
    src: u8,
    off: i16,
    imm: i32,
}

// Opcodes (linux/bpf_common.h, linux/bpf.h).
/// r_dst = *(u32 *)(r_src + off)
const LDX_W: u8 = 0x61;
/// r_dst = imm64 (two instruction slots; the second holds the high half)
const LD_IMM64: u8 = 0x18;
/// r_dst = r_src (64 bit)
const MOV_X: u8 = 0xbf;
/// r_dst = imm (64 bit)
const MOV_K: u8 = 0xb7;
/// r_dst &= imm (64 bit)
const AND_K: u8 = 0x57;
/// r_dst >>= imm (64 bit, logical)
const RSH_K: u8 = 0x77;
/// r_dst >>= r_src (64 bit, logical)
const RSH_X: u8 = 0x7f;
/// goto pc + 1 + off
const JA: u8 = 0x05;
/// if r_dst == imm goto pc + 1 + off
const JEQ_K: u8 = 0x15;
/// if r_dst > imm (unsigned) goto pc + 1 + off
const JGT_K: u8 = 0x25;
/// if r_dst != imm goto pc + 1 + off
const JNE_K: u8 = 0x55;
/// return r0
const EXIT: u8 = 0x95;

// struct bpf_cgroup_dev_ctx: access_type (type | access << 16), major, minor.
const CTX_ACCESS_TYPE: i16 = 0;
const CTX_MAJOR: i16 = 4;
const CTX_MINOR: i16 = 8;
// BPF_DEVCG_DEV_* and BPF_DEVCG_ACC_*.
const DEV_BLOCK: i32 = 1;
const DEV_CHAR: i32 = 2;
const ACC_MKNOD: i32 = 1;
const ACC_READ: i32 = 2;
const ACC_WRITE: i32 = 4;
const ACC_ALL: i32 = ACC_MKNOD | ACC_READ | ACC_WRITE;

// Registers: r1 holds the context on entry, then serves as scratch.
const R0: u8 = 0;
const R1: u8 = 1;
const ACCESS: u8 = 2;
const TYPE: u8 = 3;
const MAJOR: u8 = 4;
const MINOR: u8 = 5;

/// Minors below this are tested with one bitmap (a shift) per major
/// instead of one comparison each.
const BITMAP_MINORS: u32 = 64;

const fn insn(code: u8, dst: u8, src: u8, off: i16, imm: i32) -> Insn {
    Insn {
        code,
        dst,
        src,
        off,
        imm,
    }
}

impl Insn {
    /// The kernel's 8-byte layout, in native byte order (the register
    /// nibbles are bitfields: dst first in memory order).
    fn encode(self) -> [u8; 8] {
        let regs = if cfg!(target_endian = "little") {
            self.dst | (self.src << 4)
        } else {
            (self.dst << 4) | self.src
        };
        let off = self.off.to_ne_bytes();
        let imm = self.imm.to_ne_bytes();
        [
            self.code, regs, off[0], off[1], imm[0], imm[1], imm[2], imm[3],
        ]
    }
}

fn kind_code(kind: DeviceKind) -> i32 {
    match kind {
        DeviceKind::Block => DEV_BLOCK,
        DeviceKind::Char => DEV_CHAR,
    }
}

fn access_bits(a: super::devices::Access) -> i32 {
    [
        (a.mknod, ACC_MKNOD),
        (a.read, ACC_READ),
        (a.write, ACC_WRITE),
    ]
    .iter()
    .filter(|(on, _)| *on)
    .fold(0, |acc, (_, bit)| acc | bit)
}

/// Where a jump goes: the shared ends, or a label bound later.
#[derive(Debug, Clone, Copy)]
enum Target {
    Allow,
    Deny,
    Label(usize),
}

/// Instructions with forward jumps to labels, resolved by `finish`.
#[derive(Debug, Default)]
struct Asm {
    insns: Vec<Insn>,
    jumps: Vec<(usize, Target)>,
    labels: Vec<Option<usize>>,
}

impl Asm {
    fn op(&mut self, i: Insn) {
        self.insns.push(i);
    }

    fn jump(&mut self, code: u8, dst: u8, imm: i32, to: Target) {
        self.jumps.push((self.insns.len(), to));
        self.insns.push(insn(code, dst, 0, 0, imm));
    }

    fn label(&mut self) -> usize {
        self.labels.push(None);
        self.labels.len() - 1
    }

    fn bind(&mut self, l: usize) {
        self.labels[l] = Some(self.insns.len());
    }

    /// r_dst = v, in one slot when the kernel's sign extension of a 32-bit
    /// immediate gives v, in two (LD_IMM64) otherwise.
    fn load(&mut self, dst: u8, v: u64) {
        if v <= i32::MAX as u64 {
            self.op(insn(MOV_K, dst, 0, 0, v as i32));
        } else {
            self.op(insn(LD_IMM64, dst, 0, 0, v as u32 as i32));
            self.op(insn(0, 0, 0, 0, (v >> 32) as u32 as i32));
        }
    }

    /// Appends the two ends (deny, then allow) and sets every offset.
    fn finish(mut self) -> Vec<Insn> {
        let deny = self.insns.len();
        self.op(insn(MOV_K, R0, 0, 0, 0));
        self.op(insn(EXIT, 0, 0, 0, 0));
        let allow = self.insns.len();
        self.op(insn(MOV_K, R0, 0, 0, 1));
        self.op(insn(EXIT, 0, 0, 0, 0));
        for (at, to) in std::mem::take(&mut self.jumps) {
            let dest = match to {
                Target::Allow => allow,
                Target::Deny => deny,
                Target::Label(l) => self.labels[l].expect("every label is bound"),
            };
            self.insns[at].off = (dest as i64 - at as i64 - 1) as i16;
        }
        self.insns
    }
}

/// Rules of one kind that share a major (None: any) and an access mask.
type GroupKey = (Option<u32>, i32);

/// The program: returns 1 (allow) when the device and the requested access
/// match a rule, 0 (deny) otherwise. The verifier's work grows with the
/// number of conditional jumps (each one it explores both ways), so rules
/// are grouped: one type test per kind, one major test per (major, access)
/// group, and the group's small minors tested at once as a bitmap.
pub(super) fn program(rules: &[DeviceRule]) -> Vec<Insn> {
    let mut a = Asm::default();
    a.op(insn(LDX_W, ACCESS, R1, CTX_ACCESS_TYPE, 0));
    a.op(insn(MOV_X, TYPE, ACCESS, 0, 0));
    a.op(insn(AND_K, TYPE, 0, 0, 0xffff));
    a.op(insn(RSH_K, ACCESS, 0, 0, 16));
    a.op(insn(LDX_W, MAJOR, R1, CTX_MAJOR, 0));
    a.op(insn(LDX_W, MINOR, R1, CTX_MINOR, 0));
    for kind in [DeviceKind::Char, DeviceKind::Block] {
        // (major, access) -> minors (None: any), in the rules' order.
        let mut groups: Vec<(GroupKey, Vec<Option<u32>>)> = Vec::new();
        for r in rules.iter().filter(|r| r.kind == kind) {
            let key = (r.major, access_bits(r.access));
            match groups.iter_mut().find(|(k, _)| *k == key) {
                Some((_, minors)) => minors.push(r.minor),
                None => groups.push((key, vec![r.minor])),
            }
        }
        if groups.is_empty() {
            continue;
        }
        let next_kind = a.label();
        a.jump(JNE_K, TYPE, kind_code(kind), Target::Label(next_kind));
        for ((major, access), minors) in groups {
            let next_group = a.label();
            if let Some(m) = major {
                a.jump(JNE_K, MAJOR, m as i32, Target::Label(next_group));
            }
            if access != ACC_ALL {
                // Anything asked beyond what the group allows: not this one.
                a.op(insn(MOV_X, R1, ACCESS, 0, 0));
                a.op(insn(AND_K, R1, 0, 0, ACC_ALL & !access));
                a.jump(JNE_K, R1, 0, Target::Label(next_group));
            }
            if minors.contains(&None) {
                a.jump(JA, 0, 0, Target::Allow);
            } else {
                let mut small: Vec<u32> = Vec::new();
                for m in minors.into_iter().flatten() {
                    if m < BITMAP_MINORS && !small.contains(&m) {
                        small.push(m);
                    } else if m >= BITMAP_MINORS {
                        a.jump(JEQ_K, MINOR, m as i32, Target::Allow);
                    }
                }
                match small.as_slice() {
                    [] => {}
                    [m] => a.jump(JEQ_K, MINOR, *m as i32, Target::Allow),
                    _ => {
                        let mask = small.iter().fold(0u64, |acc, m| acc | (1 << m));
                        a.jump(
                            JGT_K,
                            MINOR,
                            (BITMAP_MINORS - 1) as i32,
                            Target::Label(next_group),
                        );
                        a.load(R1, mask);
                        a.op(insn(RSH_X, R1, MINOR, 0, 0));
                        a.op(insn(AND_K, R1, 0, 0, 1));
                        a.jump(JNE_K, R1, 0, Target::Allow);
                    }
                }
            }
            a.bind(next_group);
        }
        a.bind(next_kind);
    }
    a.jump(JA, 0, 0, Target::Deny);
    a.finish()
}

/// Loads the program for `rules` and attaches it to the cgroup `root/rel`
/// (replacing the one a previous start attached). The descriptor is closed
/// on return: the cgroup holds the only reference.
pub(super) fn apply_v2(root: &Path, rel: &Path, rules: &[DeviceRule]) -> Result<(), CgroupError> {
    let dir = super::v2::open_dir(root, rel)?;
    let path = root.join(rel);
    let insns: Vec<[u8; 8]> = program(rules).into_iter().map(Insn::encode).collect();
    let prog = crate::sys::bpf_load_device_program(&insns, "quilt_devices").map_err(|e| {
        io_err(
            &path,
            std::io::Error::new(e.kind(), format!("loading the device filter: {e}")),
        )
    })?;
    crate::sys::bpf_attach_device_program(dir.as_fd(), prog.as_fd()).map_err(|e| {
        io_err(
            &path,
            std::io::Error::new(
                if e.raw_os_error() == Some(libc::EPERM) {
                    ErrorKind::PermissionDenied
                } else {
                    e.kind()
                },
                format!("attaching the device filter: {e}"),
            ),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::super::devices::{Access, DEFAULT_RULES};
    use super::*;

    /// Runs the program on one access, interpreting exactly the opcodes
    /// `program` emits (anything else fails the test). Returns the result
    /// and the number of conditional jumps met on the way.
    fn run(p: &[Insn], kind: i32, access: i32, major: u32, minor: u32) -> u64 {
        let ctx = [(kind | (access << 16)) as u32, major, minor];
        let mut r = [0u64; 11];
        let mut pc = 0usize;
        for _ in 0..10_000 {
            let i = p[pc];
            pc += 1;
            let (d, s) = (i.dst as usize, i.src as usize);
            let imm = i.imm as i64 as u64;
            let mut jump = |cond: bool| {
                if cond {
                    pc = (pc as i64 + i64::from(i.off)) as usize;
                }
            };
            match i.code {
                LDX_W => {
                    assert_eq!(s, 1, "loads only from the context");
                    r[d] = u64::from(ctx[i.off as usize / 4]);
                }
                LD_IMM64 => {
                    let hi = p[pc];
                    assert_eq!(hi.code, 0, "LD_IMM64 takes two slots");
                    r[d] = u64::from(i.imm as u32) | (u64::from(hi.imm as u32) << 32);
                    pc += 1;
                }
                MOV_X => r[d] = r[s],
                MOV_K => r[d] = imm,
                AND_K => r[d] &= imm,
                RSH_K => r[d] >>= i.imm,
                RSH_X => {
                    assert!(r[s] < 64, "a shift the verifier would not bound");
                    r[d] >>= r[s];
                }
                JA => jump(true),
                JEQ_K => jump(r[d] == imm),
                JGT_K => jump(r[d] > imm),
                JNE_K => jump(r[d] != imm),
                EXIT => return r[0],
                other => panic!("unexpected opcode {other:#x}"),
            }
        }
        panic!("the program does not end");
    }

    #[test]
    fn the_program_allows_exactly_the_rules() {
        let mut rules = DEFAULT_RULES.to_vec();
        rules.push(DeviceRule {
            kind: DeviceKind::Char,
            major: Some(1),
            minor: Some(4),
            access: Access::parse("r").unwrap(),
        });
        rules.push(DeviceRule {
            kind: DeviceKind::Block,
            major: Some(7),
            minor: Some(2),
            access: Access::parse("rw").unwrap(),
        });
        for (major, minor) in [(240, 70_000), (241, 40), (241, 41)] {
            rules.push(DeviceRule {
                kind: DeviceKind::Char,
                major: Some(major),
                minor: Some(minor),
                access: Access::parse("rw").unwrap(),
            });
        }
        let p = program(&rules);
        let (r, w, m) = (ACC_READ, ACC_WRITE, ACC_MKNOD);
        for (kind, major, minor, access, want) in [
            (DEV_CHAR, 1, 3, r | w, 1),
            (DEV_CHAR, 1, 3, m, 1),
            (DEV_CHAR, 1, 9, r, 1),
            (DEV_CHAR, 5, 2, r | w, 1),
            (DEV_CHAR, 136, 0, r | w, 1),
            (DEV_CHAR, 136, 99_999, r | w, 1),
            // Given read-only.
            (DEV_CHAR, 1, 4, r, 1),
            (DEV_CHAR, 1, 4, w, 0),
            (DEV_CHAR, 1, 4, r | w, 0),
            (DEV_CHAR, 1, 4, m, 0),
            // Given rw: no mknod.
            (DEV_BLOCK, 7, 2, r | w, 1),
            (DEV_BLOCK, 7, 2, m, 0),
            // Same numbers, other kind.
            (DEV_BLOCK, 1, 3, r, 0),
            (DEV_CHAR, 7, 2, r, 0),
            // Same major as a bitmap group, other minors (in and out of
            // the bitmap's range).
            (DEV_CHAR, 1, 0, r, 0),
            (DEV_CHAR, 1, 6, r, 0),
            (DEV_CHAR, 1, 63, r, 0),
            (DEV_CHAR, 1, 64 + 3, r, 0),
            (DEV_CHAR, 5, 3, r, 0),
            // Large minors, and a minor with bit 31 of the bitmap.
            (DEV_CHAR, 240, 70_000, r | w, 1),
            (DEV_CHAR, 240, 70_001, r, 0),
            (DEV_CHAR, 241, 40, r, 1),
            (DEV_CHAR, 241, 41, r, 1),
            (DEV_CHAR, 241, 39, r, 0),
            // Never listed: loop devices, loop-control, ttys, vcs, nvidia.
            (DEV_BLOCK, 7, 0, r | w, 0),
            (DEV_BLOCK, 7, 0, m, 0),
            (DEV_CHAR, 10, 237, r | w, 0),
            (DEV_CHAR, 4, 1, r, 0),
            (DEV_CHAR, 7, 0, r, 0),
            (DEV_CHAR, 195, 255, r | w, 0),
            (DEV_CHAR, 1, 1, r, 0),
            (DEV_CHAR, 137, 0, r, 0),
        ] {
            assert_eq!(
                run(&p, kind, access, major, minor),
                want,
                "type {kind} {major}:{minor} access {access}"
            );
        }
        // The default list costs the verifier eight conditional jumps (one
        // per kind, major and bitmap), not three per rule.
        let defaults = program(&DEFAULT_RULES);
        let conditional = |p: &[Insn]| {
            p.iter()
                .filter(|i| matches!(i.code, JEQ_K | JGT_K | JNE_K))
                .count()
        };
        assert_eq!(conditional(&defaults), 8, "{defaults:?}");
        assert_eq!(defaults.len(), 26);
        // Nothing allowed at all with no rule.
        assert_eq!(run(&program(&[]), DEV_CHAR, ACC_READ, 1, 3), 0);
    }

    #[test]
    fn encoding_is_the_kernel_layout() {
        let i = insn(JNE_K, 3, 0, 5, 0x0102_0304).encode();
        if cfg!(target_endian = "little") {
            assert_eq!(i, [0x55, 0x03, 5, 0, 4, 3, 2, 1]);
        }
        let i = insn(LDX_W, 2, 1, 8, 0).encode();
        if cfg!(target_endian = "little") {
            assert_eq!(i, [0x61, 0x12, 8, 0, 0, 0, 0, 0]);
        }
    }
}
