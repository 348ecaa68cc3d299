//! PURE: one BPF instruction (`struct bpf_insn`) as the bytes `BPF_PROG_LOAD` takes, and the
//! opcodes and registers the two programs podports assembles use (`fd_iter`, `sock_create`).
//! Encodes only; what a program does is its module's.

/// One BPF instruction (`struct bpf_insn`).
#[derive(Debug, Clone, Copy)]
pub struct Insn {
    pub code: u8,
    pub dst: u8,
    pub src: u8,
    pub off: i16,
    pub imm: i32,
}

impl Insn {
    pub fn bytes(self) -> [u8; 8] {
        let [o0, o1] = self.off.to_le_bytes();
        let [i0, i1, i2, i3] = self.imm.to_le_bytes();
        [
            self.code,
            (self.dst & 0xf) | (self.src << 4),
            o0,
            o1,
            i0,
            i1,
            i2,
            i3,
        ]
    }
}

// Opcodes (uapi bpf_common.h / bpf.h): class | size-or-op | source; and registers.
pub const LDX_DW: u8 = 0x79;
pub const LDX_W: u8 = 0x61;
pub const LDX_H: u8 = 0x69;
pub const STX_DW: u8 = 0x7b;
pub const STX_W: u8 = 0x63;
pub const MOV64_X: u8 = 0xbf;
pub const MOV64_K: u8 = 0xb7;
pub const ADD64_K: u8 = 0x07;
pub const AND64_K: u8 = 0x57;
pub const JEQ_K: u8 = 0x15;
pub const JNE_K: u8 = 0x55;
pub const CALL: u8 = 0x85;
pub const EXIT: u8 = 0x95;
pub const R0: u8 = 0;
pub const R1: u8 = 1;
pub const R2: u8 = 2;
pub const R3: u8 = 3;
pub const R6: u8 = 6;
pub const R7: u8 = 7;
pub const R8: u8 = 8;
pub const R10: u8 = 10;
pub const ST_W: u8 = 0x62;
pub const LD_IMM64: u8 = 0x18;
pub const MOV32_X: u8 = 0xbc;
pub const RSH64_K: u8 = 0x77;
/// `src` of an `LD_IMM64` whose immediate is a map's file descriptor.
pub const PSEUDO_MAP_FD: u8 = 1;
pub const R4: u8 = 4;
pub const R9: u8 = 9;

/// An instruction of any kind.
pub fn op(code: u8, dst: u8, src: u8, off: i16, imm: i32) -> Insn {
    Insn {
        code,
        dst,
        src,
        off,
        imm,
    }
}
