//! The in-kernel fd walk: a BPF `task_file` iterator program that emits one 16-byte record
//! (socket inode, tgid, fd) per socket fd of every process, so that finding socket holders
//! costs one `read` instead of a `readlink` per fd (issue 5). Pure: the program is assembled
//! here from member offsets read out of the kernel's BTF, and records are decoded here; loading
//! and running it is `sys::bpf`'s job. The program only reads; it must never call a helper
//! that writes anything but its own output.

use crate::parse::bpf_insn::*;
use crate::parse::btf::{Btf, Member};

/// The iterator target the program attaches to (`bpf_iter_<target>` in the kernel's BTF).
pub const ATTACH_FUNC: &str = "bpf_iter_task_file";

/// Bytes per record: inode (u64), tgid (u32), fd (u32), little-endian.
pub const RECORD: usize = 16;

/// `bpf_seq_write`, the helper that appends bytes to the iterator's output (uapi bpf.h).
const HELPER_SEQ_WRITE: i32 = 127;

/// Where the fields the program reads lie in this kernel's structs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Layout {
    /// `struct bpf_iter_meta.seq`: the output.
    meta_seq: u32,
    /// `struct file.f_inode`.
    file_inode: u32,
    /// `struct inode.i_mode` (2 bytes).
    inode_mode: u32,
    /// `struct inode.i_ino` (8 bytes).
    inode_ino: u32,
    /// `struct inode.i_sb`.
    inode_sb: u32,
    /// `struct super_block.s_magic` (8 bytes).
    sb_magic: u32,
    /// `struct task_struct.tgid` (4 bytes).
    task_tgid: u32,
}

impl Layout {
    /// Reads the offsets out of `btf`, checking each field has the size the program loads.
    /// The error names the missing or unexpected field.
    pub fn from_btf(btf: &Btf) -> Result<Layout, String> {
        let field = |outer: &str, member: &str, size: u32, pointer: bool| match btf
            .member(outer, &[member])
        {
            Some(Member {
                offset,
                size: s,
                pointer: p,
            }) if s == size && p == pointer && offset <= i16::MAX as u32 => Ok(offset),
            Some(m) => Err(format!(
                "struct {outer}.{member} is not as expected ({} bytes{})",
                m.size,
                if m.pointer { ", a pointer" } else { "" }
            )),
            None => Err(format!("the kernel's BTF has no struct {outer}.{member}")),
        };
        Ok(Layout {
            meta_seq: field("bpf_iter_meta", "seq", 8, true)?,
            file_inode: field("file", "f_inode", 8, true)?,
            inode_mode: field("inode", "i_mode", 2, false)?,
            inode_ino: field("inode", "i_ino", 8, false)?,
            inode_sb: field("inode", "i_sb", 8, true)?,
            sb_magic: field("super_block", "s_magic", 8, false)?,
            task_tgid: field("task_struct", "tgid", 4, false)?,
        })
    }
}

const S_IFMT: i32 = 0o170000;
const S_IFSOCK: i32 = 0o140000;
/// The superblock magic of sockfs, where every socket's inode lives (uapi magic.h).
const SOCKFS_MAGIC: i32 = 0x534F_434B;

/// Offsets in the iterator's context (`struct bpf_iter__task_file`: meta, task, fd, file; each
/// argument in an 8-byte slot).
const CTX_META: i16 = 0;
const CTX_TASK: i16 = 8;
const CTX_FD: i16 = 16;
const CTX_FILE: i16 = 24;

fn off(v: u32) -> i16 {
    // `Layout::from_btf` only accepts offsets up to i16::MAX.
    i16::try_from(v).unwrap_or(i16::MAX)
}

fn ldx(code: u8, dst: u8, src: u8, off: i16) -> Insn {
    Insn {
        code,
        dst,
        src,
        off,
        imm: 0,
    }
}

/// The program, as the bytes `BPF_PROG_LOAD` takes. For every (task, fd, file) the iterator
/// visits: skip a missing task or file; skip a file that is not a socket (its inode is not
/// S_IFSOCK, or not on sockfs: an `O_PATH` fd of a unix socket's path has an S_IFSOCK inode of
/// the filesystem, whose number could be any socket's); else write the record (i_ino, tgid,
/// fd) to the iterator's output.
pub fn program(l: &Layout) -> Vec<u8> {
    let mut p = Program::default();
    p.push(op(MOV64_X, R6, R1, 0, 0)); // r6 = ctx
    p.push(ldx(LDX_DW, R7, R6, CTX_TASK)); // r7 = ctx->task
    p.skip_if(JEQ_K, R7, 0); // no task
    p.push(ldx(LDX_DW, R8, R6, CTX_FILE)); // r8 = ctx->file
    p.skip_if(JEQ_K, R8, 0); // no file
    p.push(ldx(LDX_DW, R2, R8, off(l.file_inode))); // r2 = file->f_inode
    p.skip_if(JEQ_K, R2, 0);
    p.push(ldx(LDX_H, R3, R2, off(l.inode_mode))); // r3 = inode->i_mode
    p.push(op(AND64_K, R3, 0, 0, S_IFMT));
    p.skip_if(JNE_K, R3, S_IFSOCK); // not a socket inode
    p.push(ldx(LDX_DW, R3, R2, off(l.inode_sb))); // r3 = inode->i_sb
    p.skip_if(JEQ_K, R3, 0);
    p.push(ldx(LDX_DW, R3, R3, off(l.sb_magic))); // r3 = sb->s_magic
    p.skip_if(JNE_K, R3, SOCKFS_MAGIC); // a socket file on a filesystem, not a socket
    p.push(ldx(LDX_DW, R3, R2, off(l.inode_ino))); // r3 = inode->i_ino
    p.push(op(STX_DW, R10, R3, -16, 0)); // record[0..8] = ino
    p.push(ldx(LDX_W, R3, R7, off(l.task_tgid))); // r3 = task->tgid
    p.push(op(STX_W, R10, R3, -8, 0)); // record[8..12] = tgid
    p.push(ldx(LDX_W, R3, R6, CTX_FD)); // r3 = ctx->fd
    p.push(op(STX_W, R10, R3, -4, 0)); // record[12..16] = fd
    p.push(ldx(LDX_DW, R1, R6, CTX_META)); // r1 = ctx->meta
    p.push(ldx(LDX_DW, R1, R1, off(l.meta_seq))); // r1 = meta->seq
    p.push(op(MOV64_X, R2, R10, 0, 0)); // r2 = fp
    p.push(op(ADD64_K, R2, 0, 0, -16)); // r2 = &record
    p.push(op(MOV64_K, R3, 0, 0, RECORD as i32)); // r3 = 16
    p.push(op(CALL, 0, 0, 0, HELPER_SEQ_WRITE)); // bpf_seq_write(seq, &record, 16)
    p.finish()
}

/// Instructions, with the forward jumps to the common `return 0` patched in at the end.
#[derive(Default)]
struct Program {
    insns: Vec<Insn>,
    skips: Vec<usize>,
}

impl Program {
    fn push(&mut self, insn: Insn) {
        self.insns.push(insn);
    }

    /// `if dst <op> imm: return 0`.
    fn skip_if(&mut self, code: u8, dst: u8, imm: i32) {
        self.skips.push(self.insns.len());
        self.insns.push(op(code, dst, 0, 0, imm));
    }

    fn finish(mut self) -> Vec<u8> {
        let out = self.insns.len();
        self.insns.push(op(MOV64_K, R0, 0, 0, 0)); // out: return 0
        self.insns.push(op(EXIT, 0, 0, 0, 0));
        for at in self.skips {
            // A jump counts instructions after itself; the program is far shorter than i16.
            let delta = i16::try_from(out - at - 1).unwrap_or(i16::MAX);
            if let Some(insn) = self.insns.get_mut(at) {
                insn.off = delta;
            }
        }
        self.insns.into_iter().flat_map(Insn::bytes).collect()
    }
}

/// A socket fd the program saw: (socket inode, tgid, fd).
pub type SocketFd = (u64, i32, i32);

/// Decodes the iterator's output as it is read, chunk by chunk, so that only the records are
/// kept, never the bytes they came in. A record split between two chunks is joined.
#[derive(Debug, Default)]
pub struct Decoder {
    records: Vec<SocketFd>,
    partial: Vec<u8>,
}

fn record(r: &[u8]) -> Option<SocketFd> {
    let ino = u64::from_le_bytes(r.get(0..8)?.try_into().ok()?);
    let tgid = i32::from_le_bytes(r.get(8..12)?.try_into().ok()?);
    let fd = i32::from_le_bytes(r.get(12..16)?.try_into().ok()?);
    Some((ino, tgid, fd))
}

impl Decoder {
    pub fn feed(&mut self, mut bytes: &[u8]) {
        if !self.partial.is_empty() {
            let need = RECORD - self.partial.len();
            let (head, rest) = bytes.split_at(need.min(bytes.len()));
            self.partial.extend_from_slice(head);
            bytes = rest;
            if self.partial.len() < RECORD {
                return;
            }
            self.records.extend(record(&self.partial));
            self.partial.clear();
        }
        let chunks = bytes.chunks_exact(RECORD);
        self.partial.extend_from_slice(chunks.remainder());
        self.records.extend(chunks.filter_map(record));
    }

    /// Every record, sorted, without duplicates: threads that do not share their process's
    /// fd table are visited on their own, so the same (inode, tgid, fd) can come twice. A
    /// trailing partial record (the program never writes one) is dropped.
    pub fn finish(mut self) -> Vec<SocketFd> {
        self.records.sort_unstable();
        self.records.dedup();
        self.records
    }
}

/// Decodes a whole output at once (`Decoder` in one chunk).
pub fn decode(bytes: &[u8]) -> Vec<SocketFd> {
    let mut d = Decoder::default();
    d.feed(bytes);
    d.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layout() -> Layout {
        Layout {
            meta_seq: 0,
            file_inode: 40,
            inode_mode: 0,
            inode_ino: 64,
            inode_sb: 40,
            sb_magic: 96,
            task_tgid: 2500,
        }
    }

    /// fixtures/btf/minimal.btf (made by make_minimal.py beside it) has Linux 6.18's offsets.
    #[test]
    fn layout_from_a_btf_fixture() {
        let bytes = include_bytes!("../../fixtures/btf/minimal.btf");
        let btf = Btf::parse(bytes).unwrap();
        assert_eq!(
            Layout::from_btf(&btf),
            Ok(Layout {
                meta_seq: 0,
                file_inode: 32,
                inode_mode: 0,
                inode_ino: 64,
                inode_sb: 40,
                sb_magic: 96,
                task_tgid: 1268,
            })
        );
        assert_eq!(btf.func_id(ATTACH_FUNC), Some(33));
        // A field of the wrong size is refused, naming it.
        let err = Layout::from_btf(&Btf::parse(&shrunk_tgid(bytes)).unwrap()).unwrap_err();
        assert!(err.contains("task_struct.tgid"), "{err}");
    }

    /// The fixture with task_struct.tgid's type switched from pid_t (4 bytes) to the 2-byte
    /// `unsigned short` (type id 1).
    fn shrunk_tgid(bytes: &[u8]) -> Vec<u8> {
        let mut b = bytes.to_vec();
        // Find the member record (name "tgid", type pid_t=6, offset 1268*8) and patch its type.
        let needle: Vec<u8> = [6u32, 1268 * 8]
            .iter()
            .flat_map(|w| w.to_le_bytes())
            .collect();
        let pos = b.windows(8).position(|w| w == needle.as_slice()).unwrap();
        b[pos..pos + 4].copy_from_slice(&1u32.to_le_bytes());
        b
    }

    #[test]
    fn program_is_whole_instructions_ending_in_exit() {
        let p = program(&layout());
        assert_eq!(p.len() % 8, 0);
        let insns: Vec<&[u8]> = p.chunks(8).collect();
        let n = insns.len();
        assert_eq!(n, 28);
        assert_eq!(insns[n - 1][0], EXIT);
        assert_eq!(insns[n - 2][0], MOV64_K);
        // Every conditional jump lands on `r0 = 0; exit`, inside the program.
        let mut jumps = 0;
        for (i, insn) in insns.iter().enumerate() {
            if insn[0] == JEQ_K || insn[0] == JNE_K {
                let off = i16::from_le_bytes([insn[2], insn[3]]);
                assert_eq!(i as i16 + 1 + off, n as i16 - 2, "jump at {i}");
                jumps += 1;
            }
        }
        assert_eq!(jumps, 6);
        // The sockfs check compares with its magic.
        assert!(
            insns
                .iter()
                .any(|i| i[0] == JNE_K
                    && i32::from_le_bytes([i[4], i[5], i[6], i[7]]) == SOCKFS_MAGIC)
        );
        // The offsets come from the layout: task->tgid at 2500.
        let tgid = insns
            .iter()
            .find(|i| i[0] == LDX_W && i[1] == R3 | (R7 << 4))
            .unwrap();
        assert_eq!(i16::from_le_bytes([tgid[2], tgid[3]]), 2500);
        // The only helper called is bpf_seq_write.
        let calls: Vec<i32> = insns
            .iter()
            .filter(|i| i[0] == CALL)
            .map(|i| i32::from_le_bytes([i[4], i[5], i[6], i[7]]))
            .collect();
        assert_eq!(calls, vec![HELPER_SEQ_WRITE]);
    }

    #[test]
    fn decode_sorts_dedups_and_drops_a_partial_record() {
        let mut bytes = Vec::new();
        for (ino, tgid, fd) in [(9u64, 3i32, 4i32), (5, 7, 1), (9, 3, 4)] {
            bytes.extend_from_slice(&ino.to_le_bytes());
            bytes.extend_from_slice(&tgid.to_le_bytes());
            bytes.extend_from_slice(&fd.to_le_bytes());
        }
        bytes.extend_from_slice(&[1, 2, 3]);
        assert_eq!(decode(&bytes), vec![(5, 7, 1), (9, 3, 4)]);
        assert!(decode(&[]).is_empty());
        // Fed in chunks of every size, records split across chunks are joined.
        for size in 1..=40 {
            let mut d = Decoder::default();
            for chunk in bytes.chunks(size) {
                d.feed(chunk);
            }
            assert_eq!(d.finish(), vec![(5, 7, 1), (9, 3, 4)], "chunks of {size}");
        }
    }
}
