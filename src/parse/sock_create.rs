//! `--watch`'s creation-side source (issue 16): a BPF tracing program on the kernel's
//! `inet_sock_set_state` tracepoint (tp_btf) that records, for each TCP socket leaving CLOSE
//! by a `connect` (CLOSE -> SYN_SENT, in the connecting process), who made it (tgid, cgroup
//! id, and the comm of the process, its thread group leader's: Envoy connects from threads
//! named `wrk:worker_0`) and when. Accepted connections are not recorded: on Linux 6.18 the program does
//! see an accepted child's SYN_RECV -> ESTABLISHED, but under a cookie other than the one the
//! accepted socket has afterwards (SO_COOKIE, and so its destroy event): tried, 912837 recorded
//! vs. 912838 read, so a record would never be found. Their owner is their listener's anyway. Records go to an LRU hash map keyed by socket cookie, the
//! key a destroy event carries. Pure: the program is assembled here and records are decoded
//! here; loading, attaching and looking up is `sys::bpf`'s job. The program only writes its
//! own map; it must never call a helper that changes anything else.

/// The typedef the kernel's BTF gives the tracepoint's probe (`btf_trace_<tracepoint>`): the
/// program's attach BTF id.
pub const ATTACH_TYPEDEF: &str = "btf_trace_inet_sock_set_state";

use crate::parse::bpf_insn::*;
use crate::parse::btf::{Btf, Member};

/// Key: the socket cookie (u64). Value: `RECORD` bytes.
pub const KEY: usize = 8;
/// tgid (u32), kind (u32), cgroup id (u64), ktime ns (u64), comm (16 bytes), little-endian.
pub const RECORD: usize = 40;

// Helpers (uapi bpf.h `__BPF_FUNC_MAPPER`). All are callable from tracing programs:
// base helpers, plus get_socket_cookie (tracing_prog_func_proto, Linux 5.12+).
const HELPER_MAP_UPDATE_ELEM: i32 = 2;
const HELPER_KTIME_GET_NS: i32 = 5;
const HELPER_GET_CURRENT_PID_TGID: i32 = 14;
const HELPER_GET_SOCKET_COOKIE: i32 = 46;
const HELPER_GET_CURRENT_CGROUP_ID: i32 = 80;
/// The current task as a BTF pointer (Linux 5.11+), whose fields the program reads directly.
const HELPER_GET_CURRENT_TASK_BTF: i32 = 158;

/// Where the fields the program reads lie in this kernel's `struct task_struct`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Layout {
    /// `task_struct.group_leader` (a pointer).
    group_leader: u32,
    /// `task_struct.comm` (16 bytes).
    comm: u32,
}

impl Layout {
    /// Reads the offsets out of `btf`; the error names the missing or unexpected field.
    pub fn from_btf(btf: &Btf) -> Result<Layout, String> {
        let field =
            |member: &str, size: u32, pointer: bool| match btf.member("task_struct", &[member]) {
                Some(Member {
                    offset,
                    size: s,
                    pointer: p,
                }) if s == size && p == pointer && offset <= (i16::MAX - 8) as u32 => Ok(offset),
                Some(m) => Err(format!(
                    "struct task_struct.{member} is not as expected ({} bytes{})",
                    m.size,
                    if m.pointer { ", a pointer" } else { "" }
                )),
                None => Err(format!(
                    "the kernel's BTF has no struct task_struct.{member}"
                )),
            };
        Ok(Layout {
            group_leader: field("group_leader", 8, true)?,
            comm: field("comm", 16, false)?,
        })
    }
}

fn off(v: u32) -> i16 {
    // `Layout::from_btf` only accepts offsets up to i16::MAX - 8.
    i16::try_from(v).unwrap_or(0)
}

/// TCP states (include/net/tcp_states.h).
const TCP_SYN_SENT: i32 = 2;
const TCP_CLOSE: i32 = 7;

/// `kind` of a record: made by `connect` in this process (the only kind written today; the
/// field leaves room for others).
const KIND_CONNECT: u32 = 1;

/// Where the record and the key lie on the program's stack (below the frame pointer).
const VALUE: i16 = -40;
const KEY_AT: i16 = -48;

/// Offsets in the tracepoint's context: its arguments after the probe's `void *`, each in an
/// 8-byte slot: `const struct sock *sk, const int oldstate, const int newstate`.
const CTX_SK: i16 = 0;
const CTX_OLD: i16 = 8;
const CTX_NEW: i16 = 16;

/// Jump targets of the program.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Label {
    Out,
}

#[derive(Default)]
struct Asm {
    insns: Vec<Insn>,
    jumps: Vec<(usize, Label)>,
    labels: Vec<(Label, usize)>,
}

impl Asm {
    fn push(&mut self, insn: Insn) {
        self.insns.push(insn);
    }

    /// `if dst <code> imm goto label`.
    fn jump(&mut self, code: u8, dst: u8, imm: i32, to: Label) {
        self.jumps.push((self.insns.len(), to));
        self.insns.push(op(code, dst, 0, 0, imm));
    }

    fn label(&mut self, l: Label) {
        self.labels.push((l, self.insns.len()));
    }

    fn call(&mut self, helper: i32) {
        self.push(op(CALL, 0, 0, 0, helper));
    }

    fn finish(mut self) -> Vec<u8> {
        for &(at, to) in &self.jumps {
            let target = self
                .labels
                .iter()
                .find(|(l, _)| *l == to)
                .map_or(at + 1, |&(_, t)| t);
            // Forward jumps only, in a program far shorter than i16.
            let delta = i16::try_from(target.saturating_sub(at + 1)).unwrap_or(0);
            if let Some(insn) = self.insns.get_mut(at) {
                insn.off = delta;
            }
        }
        self.insns.into_iter().flat_map(Insn::bytes).collect()
    }
}

/// The program, as the bytes `BPF_PROG_LOAD` takes, writing into the map `map_fd`:
///
/// ```text
/// sk = ctx[0]; old = (u32)ctx[1]; new = (u32)ctx[2]; if !sk: return
/// if old != CLOSE || new != SYN_SENT: return
/// value = {0}
/// value.tgid = pid_tgid >> 32; value.kind = CONNECT; value.cgroup = current cgroup id
/// value.comm = current task->group_leader->comm; value.ktime = ktime_ns
/// key = socket cookie of sk; map[key] = value
/// ```
pub fn program(map_fd: i32, l: &Layout) -> Vec<u8> {
    let mut p = Asm::default();
    p.push(op(MOV64_X, R6, R1, 0, 0)); // r6 = ctx
    p.push(op(LDX_DW, R7, R6, CTX_SK, 0)); // r7 = sk
    p.jump(JEQ_K, R7, 0, Label::Out);
    p.push(op(LDX_DW, R8, R6, CTX_OLD, 0)); // r8 = oldstate
    p.push(op(MOV32_X, R8, R8, 0, 0)); // an int: the slot's upper half is not defined
    p.push(op(LDX_DW, R9, R6, CTX_NEW, 0)); // r9 = newstate
    p.push(op(MOV32_X, R9, R9, 0, 0));
    p.jump(JNE_K, R8, TCP_CLOSE, Label::Out);
    p.jump(JNE_K, R9, TCP_SYN_SENT, Label::Out);
    p.push(op(MOV64_K, R1, 0, 0, 0));
    for slot in 0..5i16 {
        p.push(op(STX_DW, R10, R1, VALUE + 8 * slot, 0)); // value = {0}
    }
    p.call(HELPER_GET_CURRENT_PID_TGID);
    p.push(op(RSH64_K, R0, 0, 0, 32));
    p.push(op(STX_W, R10, R0, VALUE, 0)); // value.tgid
    p.push(op(ST_W, R10, 0, VALUE + 4, KIND_CONNECT as i32)); // value.kind
    p.call(HELPER_GET_CURRENT_CGROUP_ID);
    p.push(op(STX_DW, R10, R0, VALUE + 8, 0)); // value.cgroup
    p.call(HELPER_GET_CURRENT_TASK_BTF);
    p.push(op(LDX_DW, R1, R0, off(l.group_leader), 0)); // r1 = task->group_leader
    p.push(op(LDX_DW, R2, R1, off(l.comm), 0)); // value.comm = leader->comm
    p.push(op(STX_DW, R10, R2, VALUE + 24, 0));
    p.push(op(LDX_DW, R2, R1, off(l.comm) + 8, 0));
    p.push(op(STX_DW, R10, R2, VALUE + 32, 0));
    p.call(HELPER_KTIME_GET_NS);
    p.push(op(STX_DW, R10, R0, VALUE + 16, 0)); // value.ktime
    p.push(op(MOV64_X, R1, R7, 0, 0));
    p.call(HELPER_GET_SOCKET_COOKIE);
    p.push(op(STX_DW, R10, R0, KEY_AT, 0)); // key
    p.push(op(LD_IMM64, R1, PSEUDO_MAP_FD, 0, map_fd)); // r1 = map
    p.push(op(0, 0, 0, 0, 0));
    p.push(op(MOV64_X, R2, R10, 0, 0));
    p.push(op(ADD64_K, R2, 0, 0, i32::from(KEY_AT)));
    p.push(op(MOV64_X, R3, R10, 0, 0));
    p.push(op(ADD64_K, R3, 0, 0, i32::from(VALUE)));
    p.push(op(MOV64_K, R4, 0, 0, 0)); // BPF_ANY
    p.call(HELPER_MAP_UPDATE_ELEM);
    p.label(Label::Out);
    p.push(op(MOV64_K, R0, 0, 0, 0));
    p.push(op(EXIT, 0, 0, 0, 0));
    p.finish()
}

/// What the program recorded of a socket's creation: the process that called `connect`, as
/// it was then, and when.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub tgid: i32,
    /// Its cgroup (v2) id: the inode of its cgroup directory.
    pub cgroup_id: u64,
    /// Its comm (its thread group leader's, the process's), up to the first NUL.
    pub comm: Vec<u8>,
    /// `CLOCK_MONOTONIC` nanoseconds when it left CLOSE.
    pub ktime_ns: u64,
}

/// Decodes one map value; None when it is not a record the program writes.
pub fn decode(v: &[u8]) -> Option<Record> {
    let u32_at = |at: usize| -> Option<u32> {
        Some(u32::from_le_bytes(v.get(at..at + 4)?.try_into().ok()?))
    };
    let u64_at = |at: usize| -> Option<u64> {
        Some(u64::from_le_bytes(v.get(at..at + 8)?.try_into().ok()?))
    };
    if v.len() != RECORD {
        return None;
    }
    if u32_at(4)? != KIND_CONNECT {
        return None;
    }
    let comm = v.get(24..40)?;
    let end = comm.iter().position(|&b| b == 0).unwrap_or(comm.len());
    Some(Record {
        tgid: i32::try_from(u32_at(0)?).ok()?,
        cgroup_id: u64_at(8)?,
        comm: comm.get(..end)?.to_vec(),
        ktime_ns: u64_at(16)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layout() -> Layout {
        Layout {
            group_leader: 2600,
            comm: 3000,
        }
    }

    #[test]
    fn the_comm_is_read_from_the_group_leader_at_the_layouts_offsets() {
        let all = insns(&program(3, &layout()));
        let loads: Vec<(u8, u8, i16)> = all
            .iter()
            .filter(|i| i[0] == LDX_DW)
            .map(|i| (i[1] & 0xf, i[1] >> 4, i16::from_le_bytes([i[2], i[3]])))
            .collect();
        assert!(loads.contains(&(R1, R0, 2600)), "{loads:?}");
        assert!(loads.contains(&(R2, R1, 3000)), "{loads:?}");
        assert!(loads.contains(&(R2, R1, 3008)), "{loads:?}");
    }

    fn insns(p: &[u8]) -> Vec<[u8; 8]> {
        p.chunks(8).map(|c| c.try_into().unwrap()).collect()
    }

    #[test]
    fn every_jump_lands_inside_and_the_program_ends_in_exit() {
        let p = program(7, &layout());
        assert_eq!(p.len() % 8, 0);
        let all = insns(&p);
        let n = all.len();
        assert_eq!(all[n - 1][0], EXIT);
        assert_eq!(all[n - 2][0], MOV64_K);
        let mut targets = Vec::new();
        for (i, insn) in all.iter().enumerate() {
            if matches!(insn[0], JEQ_K | JNE_K) {
                let off = i16::from_le_bytes([insn[2], insn[3]]);
                assert!(off > 0, "jump at {i} does not go forward");
                let t = i + 1 + off as usize;
                assert!(t < n, "jump at {i} leaves the program");
                targets.push(t);
            }
        }
        // All go to `r0 = 0; exit`.
        assert_eq!(targets, vec![n - 2; 3]);
        // The map is loaded by its fd, as a pseudo map fd, in a two-slot instruction.
        let ld = all.iter().position(|i| i[0] == LD_IMM64).unwrap();
        assert_eq!(all[ld][1] >> 4, PSEUDO_MAP_FD);
        assert_eq!(i32::from_le_bytes(all[ld][4..8].try_into().unwrap()), 7);
        assert_eq!(all[ld + 1], [0; 8]);
    }

    #[test]
    fn only_the_helpers_tracing_programs_may_call() {
        let calls: Vec<i32> = insns(&program(3, &layout()))
            .iter()
            .filter(|i| i[0] == CALL)
            .map(|i| i32::from_le_bytes(i[4..8].try_into().unwrap()))
            .collect();
        assert_eq!(
            calls,
            vec![
                HELPER_GET_CURRENT_PID_TGID,
                HELPER_GET_CURRENT_CGROUP_ID,
                HELPER_GET_CURRENT_TASK_BTF,
                HELPER_KTIME_GET_NS,
                HELPER_GET_SOCKET_COOKIE,
                HELPER_MAP_UPDATE_ELEM,
            ]
        );
    }

    fn value(tgid: u32, kind: u32, cgroup: u64, ktime: u64, comm: &[u8]) -> Vec<u8> {
        let mut v = Vec::new();
        v.extend_from_slice(&tgid.to_le_bytes());
        v.extend_from_slice(&kind.to_le_bytes());
        v.extend_from_slice(&cgroup.to_le_bytes());
        v.extend_from_slice(&ktime.to_le_bytes());
        let mut c = [0u8; 16];
        c[..comm.len()].copy_from_slice(comm);
        v.extend_from_slice(&c);
        v
    }

    #[test]
    fn records_decode_and_anything_else_is_refused() {
        assert_eq!(
            decode(&value(42, KIND_CONNECT, 9001, 123, b"curl")),
            Some(Record {
                tgid: 42,
                cgroup_id: 9001,
                comm: b"curl".to_vec(),
                ktime_ns: 123
            })
        );
        // A comm of 16 bytes without NUL is taken whole.
        let full = decode(&value(1, KIND_CONNECT, 1, 1, b"0123456789abcdef")).unwrap();
        assert_eq!(full.comm, b"0123456789abcdef");
        assert_eq!(decode(&value(0, 0, 0, 5, b"")), None);
        assert_eq!(decode(&value(0, 2, 0, 5, b"")), None);
        assert_eq!(decode(&value(u32::MAX, KIND_CONNECT, 0, 5, b"")), None);
        assert_eq!(decode(&[0; 39]), None);
        assert_eq!(decode(&[]), None);
    }
}
