//! The kernel's BPF Type Format (`/sys/kernel/btf/vmlinux`), read just far enough to find a
//! function's type id and where a struct member sits, so that the in-kernel fd walk
//! (`fd_walk`) is built for the running kernel's layout instead of a guessed one.
//! Pure: bytes in, ids and offsets out; any malformed input is an error, never a panic.

use super::ParseError;

const MAGIC: u16 = 0xeb9f;

/// BTF kinds (`BTF_KIND_*` in include/uapi/linux/btf.h).
mod kind {
    pub const INT: u32 = 1;
    pub const PTR: u32 = 2;
    pub const ARRAY: u32 = 3;
    pub const STRUCT: u32 = 4;
    pub const UNION: u32 = 5;
    pub const ENUM: u32 = 6;
    pub const FWD: u32 = 7;
    pub const TYPEDEF: u32 = 8;
    pub const VOLATILE: u32 = 9;
    pub const CONST: u32 = 10;
    pub const RESTRICT: u32 = 11;
    pub const FUNC: u32 = 12;
    pub const FUNC_PROTO: u32 = 13;
    pub const VAR: u32 = 14;
    pub const DATASEC: u32 = 15;
    pub const FLOAT: u32 = 16;
    pub const DECL_TAG: u32 = 17;
    pub const TYPE_TAG: u32 = 18;
    pub const ENUM64: u32 = 19;
}

/// One type's header: its kind, name, size-or-type word, and where its members start.
#[derive(Debug, Clone, Copy)]
struct Type {
    kind: u32,
    name: u32,
    /// `size` for ints, structs, unions, enums; `type` for pointers, typedefs, modifiers.
    size_or_type: u32,
    vlen: usize,
    kind_flag: bool,
    /// Offset of the kind-specific data (the members) in the type section.
    data: usize,
}

/// The type section, indexed by type id (id 0 is `void`). Only where each type starts is
/// kept: the vmlinux BTF has ~150k types, and decoding them all took longer than the kernel
/// walk it serves. Types are decoded when asked for.
#[derive(Debug)]
pub struct Btf<'a> {
    types: &'a [u8],
    strings: &'a [u8],
    /// Start of type id `i + 1` in `types`.
    offsets: Vec<u32>,
}

/// Where a member is: its byte offset from the start of the outer struct, and its size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Member {
    pub offset: u32,
    pub size: u32,
    /// The member is a pointer (its size is then the pointer size, 8).
    pub pointer: bool,
}

fn truncated() -> ParseError {
    ParseError::new("BTF type section is truncated")
}

fn u32_at(bytes: &[u8], at: usize) -> Option<u32> {
    let b: [u8; 4] = bytes.get(at..at.checked_add(4)?)?.try_into().ok()?;
    Some(u32::from_le_bytes(b))
}

fn usize_of(v: u32) -> usize {
    usize::try_from(v).unwrap_or(usize::MAX)
}

/// The header of the type at `at`, and where the next type starts.
fn header(types: &[u8], at: usize) -> Result<(Type, usize), ParseError> {
    let word = |i: usize| u32_at(types, at + 4 * i).ok_or_else(truncated);
    let (name, info, size_or_type) = (word(0)?, word(1)?, word(2)?);
    let vlen = usize_of(info & 0xffff);
    let kind = (info >> 24) & 0x1f;
    let data = at + 12;
    let extra = match kind {
        kind::INT | kind::VAR | kind::DECL_TAG => 4,
        kind::PTR
        | kind::FWD
        | kind::TYPEDEF
        | kind::VOLATILE
        | kind::CONST
        | kind::RESTRICT
        | kind::FUNC
        | kind::FLOAT
        | kind::TYPE_TAG => 0,
        kind::ARRAY => 12,
        kind::STRUCT | kind::UNION | kind::DATASEC | kind::ENUM64 => vlen * 12,
        kind::ENUM | kind::FUNC_PROTO => vlen * 8,
        other => {
            return Err(ParseError::new(format!(
                "unknown BTF kind {other} at byte {at} of the type section"
            )));
        }
    };
    let next = data + extra;
    if next > types.len() {
        return Err(truncated());
    }
    let t = Type {
        kind,
        name,
        size_or_type,
        vlen,
        kind_flag: info >> 31 == 1,
        data,
    };
    Ok((t, next))
}

impl<'a> Btf<'a> {
    /// Indexes a little-endian BTF blob (the host's byte order: the bytes come from the
    /// running kernel).
    pub fn parse(bytes: &'a [u8]) -> Result<Btf<'a>, ParseError> {
        let magic = bytes.get(..2).map(|m| m == MAGIC.to_le_bytes());
        if magic != Some(true) {
            return Err(ParseError::new("not BTF (bad magic)"));
        }
        let field = |at| {
            u32_at(bytes, at)
                .map(usize_of)
                .ok_or_else(|| ParseError::new("BTF header is truncated"))
        };
        let hdr_len = field(4)?;
        let section = |off: usize, len: usize| {
            let start = hdr_len.checked_add(off)?;
            bytes.get(start..start.checked_add(len)?)
        };
        let types = section(field(8)?, field(12)?)
            .ok_or_else(|| ParseError::new("BTF type section lies outside the blob"))?;
        let strings = section(field(16)?, field(20)?)
            .ok_or_else(|| ParseError::new("BTF string section lies outside the blob"))?;
        let mut offsets = Vec::with_capacity(types.len() / 16);
        let mut at = 0;
        while at < types.len() {
            offsets.push(u32::try_from(at).map_err(|_| truncated())?);
            at = header(types, at)?.1;
        }
        Ok(Btf {
            types,
            strings,
            offsets,
        })
    }

    fn string(&self, off: u32) -> Option<&'a [u8]> {
        let rest = self.strings.get(usize_of(off)..)?;
        let end = rest.iter().position(|&b| b == 0)?;
        rest.get(..end)
    }

    fn get(&self, id: u32) -> Option<Type> {
        let at = self.offsets.get(usize_of(id).checked_sub(1)?)?;
        header(self.types, usize_of(*at)).ok().map(|(t, _)| t)
    }

    /// (name, type, bit offset, is a bitfield) of each member of a struct or union.
    fn members(&self, t: Type) -> impl Iterator<Item = (u32, u32, u32, bool)> + '_ {
        let n = if matches!(t.kind, kind::STRUCT | kind::UNION) {
            t.vlen
        } else {
            0
        };
        (0..n).filter_map(move |i| {
            let at = t.data + i * 12;
            let (name, ty, off) = (
                u32_at(self.types, at)?,
                u32_at(self.types, at + 4)?,
                u32_at(self.types, at + 8)?,
            );
            // With kind_flag, the top 8 bits are a bitfield's size (0: not a bitfield).
            if t.kind_flag {
                Some((name, ty, off & 0x00ff_ffff, off >> 24 != 0))
            } else {
                Some((name, ty, off, false))
            }
        })
    }

    /// The id of the function `name` (`BTF_KIND_FUNC`).
    pub fn func_id(&self, name: &str) -> Option<u32> {
        self.named(name, kind::FUNC)
    }

    /// The id of the typedef `name` (`BTF_KIND_TYPEDEF`): a tracepoint's `btf_trace_<name>`.
    pub fn typedef_id(&self, name: &str) -> Option<u32> {
        self.named(name, kind::TYPEDEF)
    }

    /// The first type of kind `want` named `name`.
    fn named(&self, name: &str, want: u32) -> Option<u32> {
        (1..=self.offsets.len()).find_map(|id| {
            let id = u32::try_from(id).ok()?;
            let t = self.get(id)?;
            (t.kind == want && self.string(t.name)? == name.as_bytes()).then_some(id)
        })
    }

    /// Follows typedefs and qualifiers (const, volatile, ...) to the type underneath.
    fn resolve(&self, mut id: u32) -> Option<Type> {
        // A chain longer than this is a loop in a malformed blob.
        for _ in 0..32 {
            let t = self.get(id)?;
            match t.kind {
                kind::TYPEDEF | kind::VOLATILE | kind::CONST | kind::RESTRICT | kind::TYPE_TAG => {
                    id = t.size_or_type;
                }
                _ => return Some(t),
            }
        }
        None
    }

    /// Where `path` (member names, outermost first) lies in `struct outer`, looking through
    /// anonymous unions and structs as C does. None when the struct or a member is missing,
    /// a member is a bitfield, or an inner step is not a struct or union.
    pub fn member(&self, outer: &str, path: &[&str]) -> Option<Member> {
        let mut t = self.get(self.named(outer, kind::STRUCT)?)?;
        let mut offset_bits = 0u64;
        let mut last: Option<Type> = None;
        for (i, step) in path.iter().enumerate() {
            let mut budget = MEMBER_BUDGET;
            let (bits, m_type) = self.find_member(t, step.as_bytes(), 0, &mut budget)?;
            offset_bits = offset_bits.checked_add(bits)?;
            let inner = self.resolve(m_type)?;
            if i + 1 < path.len() {
                if !matches!(inner.kind, kind::STRUCT | kind::UNION) {
                    return None;
                }
                t = inner;
            }
            last = Some(inner);
        }
        let last = last?;
        if !offset_bits.is_multiple_of(8) {
            return None;
        }
        let (size, pointer) = match last.kind {
            kind::PTR => (8, true),
            kind::INT | kind::ENUM | kind::ENUM64 | kind::STRUCT | kind::UNION => {
                (last.size_or_type, false)
            }
            // An array of integers (`char comm[16]`): its whole size.
            kind::ARRAY => {
                let elem = self.resolve(u32_at(self.types, last.data)?)?;
                let count = u32_at(self.types, last.data.checked_add(8)?)?;
                if elem.kind != kind::INT {
                    return None;
                }
                (elem.size_or_type.checked_mul(count)?, false)
            }
            _ => return None,
        };
        Some(Member {
            offset: u32::try_from(offset_bits / 8).ok()?,
            size,
            pointer,
        })
    }

    /// (bit offset, type id) of the member `name` of `t`, searching anonymous members. A
    /// bitfield is refused. At most `budget` members are looked at: anonymous members that
    /// lead back to their own struct (malformed BTF) would otherwise cost vlen^depth steps.
    fn find_member(
        &self,
        t: Type,
        name: &[u8],
        depth: u32,
        budget: &mut u32,
    ) -> Option<(u64, u32)> {
        if depth > 8 {
            return None;
        }
        for (m_name, m_type, bits, bitfield) in self.members(t) {
            *budget = budget.checked_sub(1)?;
            let m = self.string(m_name)?;
            if m == name {
                return (!bitfield).then_some((u64::from(bits), m_type));
            }
            if m.is_empty() {
                let inner = self.resolve(m_type)?;
                if matches!(inner.kind, kind::STRUCT | kind::UNION)
                    && let Some((b, ty)) = self.find_member(inner, name, depth + 1, budget)
                {
                    return Some((u64::from(bits).checked_add(b)?, ty));
                }
            }
        }
        None
    }
}

/// Members looked at in one lookup, at most: task_struct, the largest struct, has ~270 with
/// its anonymous parts.
const MEMBER_BUDGET: u32 = 4096;

#[cfg(test)]
mod tests {
    use super::*;

    /// A BTF blob built by hand: strings, then types as (name, kind, kind_flag, vlen,
    /// size_or_type, extra words).
    struct Builder {
        strings: Vec<u8>,
        types: Vec<u8>,
        next_id: u32,
    }

    impl Builder {
        fn new() -> Builder {
            Builder {
                strings: vec![0],
                types: Vec::new(),
                next_id: 1,
            }
        }

        fn s(&mut self, name: &str) -> u32 {
            if name.is_empty() {
                return 0;
            }
            let off = self.strings.len() as u32;
            self.strings.extend_from_slice(name.as_bytes());
            self.strings.push(0);
            off
        }

        fn ty(
            &mut self,
            name: &str,
            kind: u32,
            flag: bool,
            vlen: u32,
            st: u32,
            extra: &[u32],
        ) -> u32 {
            let name = self.s(name);
            let info = (kind << 24) | vlen | if flag { 1 << 31 } else { 0 };
            for w in [name, info, st].iter().chain(extra) {
                self.types.extend_from_slice(&w.to_le_bytes());
            }
            self.next_id += 1;
            self.next_id - 1
        }

        fn int(&mut self, name: &str, size: u32) -> u32 {
            self.ty(name, kind::INT, false, 0, size, &[size * 8])
        }

        fn strukt(&mut self, name: &str, size: u32, members: &[(&str, u32, u32)]) -> u32 {
            let mut extra = Vec::new();
            for (n, t, off) in members {
                let n = self.s(n);
                extra.extend([n, *t, *off]);
            }
            self.ty(
                name,
                kind::STRUCT,
                false,
                members.len() as u32,
                size,
                &extra,
            )
        }

        fn bytes(&self) -> Vec<u8> {
            let mut out = Vec::new();
            out.extend_from_slice(&MAGIC.to_le_bytes());
            out.extend_from_slice(&[1, 0]);
            for w in [
                24u32,
                0,
                self.types.len() as u32,
                self.types.len() as u32,
                self.strings.len() as u32,
            ] {
                out.extend_from_slice(&w.to_le_bytes());
            }
            out.extend_from_slice(&self.types);
            out.extend_from_slice(&self.strings);
            out
        }
    }

    fn sample() -> Vec<u8> {
        let mut b = Builder::new();
        let u16_ = b.int("unsigned short", 2);
        let u64_ = b.int("long unsigned int", 8);
        let umode = b.ty("umode_t", kind::TYPEDEF, false, 0, u16_, &[]);
        let inode = b.strukt("inode", 64, &[("i_mode", umode, 0), ("i_ino", u64_, 64)]);
        let inode_ptr = b.ty("", kind::PTR, false, 0, inode, &[]);
        let cptr = b.ty("", kind::CONST, false, 0, inode_ptr, &[]);
        // struct file { u64 pad; union { struct { u64 x; struct inode *const f_inode; }; }; }
        let anon_s = b.strukt("", 16, &[("x", u64_, 0), ("f_inode", cptr, 64)]);
        let anon_u = b.ty("", kind::UNION, false, 1, 16, &[0, anon_s, 0]);
        b.strukt("file", 24, &[("pad", u64_, 0), ("", anon_u, 64)]);
        // A bitfield struct (kind_flag): member at bit 3, 1 bit wide.
        let bit = b.s("bit");
        b.ty(
            "flags",
            kind::STRUCT,
            true,
            1,
            4,
            &[bit, u16_, (1 << 24) | 3],
        );
        b.ty("bpf_iter_task_file", kind::FUNC, false, 0, 0, &[]);
        b.bytes()
    }

    /// A tracepoint's `btf_trace_<name>` is a typedef (of a pointer to its probe's type):
    /// found by kind, a function of the same name is not taken for it.
    #[test]
    fn typedef_ids_are_found_by_kind() {
        let mut b = Builder::new();
        let proto = b.ty("", kind::FUNC_PROTO, false, 0, 0, &[]);
        let ptr = b.ty("", kind::PTR, false, 0, proto, &[]);
        let func = b.ty("btf_trace_x", kind::FUNC, false, 0, proto, &[]);
        let td = b.ty("btf_trace_x", kind::TYPEDEF, false, 0, ptr, &[]);
        let bytes = b.bytes();
        let btf = Btf::parse(&bytes).unwrap();
        assert_eq!(btf.typedef_id("btf_trace_x"), Some(td));
        assert_eq!(btf.func_id("btf_trace_x"), Some(func));
        assert_eq!(btf.typedef_id("btf_trace_y"), None);
    }

    /// `char comm[16]`: an array of integers has its whole size; an array of structs none.
    #[test]
    fn an_array_member_has_its_whole_size() {
        let mut b = Builder::new();
        let ch = b.int("char", 1);
        let u32_ = b.int("unsigned int", 4);
        let arr = b.ty("", kind::ARRAY, false, 0, 0, &[ch, u32_, 16]);
        let inner = b.strukt("inner", 4, &[("x", u32_, 0)]);
        let arr2 = b.ty("", kind::ARRAY, false, 0, 0, &[inner, u32_, 2]);
        b.strukt(
            "task",
            40,
            &[("pid", u32_, 0), ("comm", arr, 64), ("xs", arr2, 192)],
        );
        let bytes = b.bytes();
        let btf = Btf::parse(&bytes).unwrap();
        assert_eq!(
            btf.member("task", &["comm"]),
            Some(Member {
                offset: 8,
                size: 16,
                pointer: false
            })
        );
        assert_eq!(btf.member("task", &["xs"]), None);
    }

    #[test]
    fn members_through_typedefs_and_anonymous_unions() {
        let bytes = sample();
        let btf = Btf::parse(&bytes).unwrap();
        assert_eq!(
            btf.member("inode", &["i_mode"]),
            Some(Member {
                offset: 0,
                size: 2,
                pointer: false
            })
        );
        assert_eq!(
            btf.member("inode", &["i_ino"]),
            Some(Member {
                offset: 8,
                size: 8,
                pointer: false
            })
        );
        assert_eq!(
            btf.member("file", &["f_inode"]),
            Some(Member {
                offset: 16,
                size: 8,
                pointer: true
            })
        );
        assert_eq!(
            btf.member("file", &["f_inode", "i_mode"]),
            None,
            "a pointer is not walked"
        );
        assert_eq!(btf.member("file", &["nope"]), None);
        assert_eq!(btf.member("nostruct", &["x"]), None);
        assert_eq!(btf.member("flags", &["bit"]), None, "bitfields are refused");
        assert_eq!(
            btf.member("flags", &["byte"]),
            None,
            "even on a byte boundary"
        );
        assert_eq!(btf.func_id("bpf_iter_task_file"), Some(11));
        assert_eq!(btf.func_id("inode"), None, "a struct is not a function");
    }

    /// A struct whose anonymous members are itself, 8 of them: without a budget, looking up a
    /// missing member took 8^9 steps (minutes); with it, this returns at once.
    #[test]
    fn a_struct_that_contains_itself_anonymously_is_searched_in_bounded_time() {
        let mut b = Builder::new();
        let me = b.next_id;
        let members: Vec<(&str, u32, u32)> = (0..8).map(|_| ("", me, 0)).collect();
        b.strukt("loop", 8, &members);
        let bytes = b.bytes();
        let btf = Btf::parse(&bytes).unwrap();
        assert_eq!(btf.member("loop", &["missing"]), None);
    }

    #[test]
    fn malformed_blobs_are_errors() {
        let good = sample();
        assert!(Btf::parse(&[]).is_err());
        assert!(Btf::parse(b"\x9f\xeb").is_err());
        for cut in [30, good.len() / 2, good.len() - 40] {
            let mut bad = good.clone();
            bad.truncate(cut);
            assert!(Btf::parse(&bad).is_err(), "cut at {cut}");
        }
        let mut bad = good.clone();
        // An unknown kind in the first type's info word.
        bad[24 + 7] = 0x1f;
        assert!(Btf::parse(&bad).is_err());
        // A huge vlen must not allocate or loop: it runs out of bytes.
        let mut bad = good.clone();
        bad[24 + 12 * 3 + 4] = 0xff;
        bad[24 + 12 * 3 + 5] = 0xff;
        let _ = Btf::parse(&bad);
    }

    #[test]
    fn this_kernels_btf_has_what_the_fd_walk_needs() {
        let Ok(bytes) = std::fs::read("/sys/kernel/btf/vmlinux") else {
            eprintln!("skipped: no /sys/kernel/btf/vmlinux on this kernel");
            return;
        };
        let btf = Btf::parse(&bytes).unwrap();
        assert!(btf.func_id("bpf_iter_task_file").is_some());
        let ino = btf.member("inode", &["i_ino"]).unwrap();
        assert_eq!(ino.size, 8);
        assert_eq!(btf.member("inode", &["i_mode"]).unwrap().size, 2);
        assert!(btf.member("file", &["f_inode"]).unwrap().pointer);
        assert_eq!(btf.member("task_struct", &["tgid"]).unwrap().size, 4);
        let layout = crate::parse::fd_iter::Layout::from_btf(&btf).unwrap();
        eprintln!("this kernel: {layout:?}");
    }
}
