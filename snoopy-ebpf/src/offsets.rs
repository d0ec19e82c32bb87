//! The kernel struct offsets the programs read, from the running kernel's BTF.
//!
//! Rust eBPF has no CO-RE relocations, and the layouts move between kernels (`ns_common`
//! changed recently, for one): the loader looks every field up by name, through anonymous
//! structs and unions, and hands the offsets to the programs as a global.

use std::path::Path;

use btf_rs::{Btf, Struct, Type};
use snoopy_ebpf_common::Offsets;

use crate::Error;

/// Where the kernel exposes its own BTF.
pub const VMLINUX_BTF: &str = "/sys/kernel/btf/vmlinux";

/// The offsets from the BTF file at `path` (usually [`VMLINUX_BTF`]).
pub fn from_file(path: &Path) -> Result<Offsets, Error> {
    let btf = Btf::from_file(path).map_err(|err| Error::Btf {
        path: path.to_path_buf(),
        reason: err.to_string(),
    })?;
    let sock = |fields: &[&str]| member_offset(&btf, "sock", fields);
    let common = |field: &str| sock(&["__sk_common", field]);
    let tcp = |field: &str| member_offset(&btf, "tcp_sock", &[field]);
    Ok(Offsets {
        family: common("skc_family")?,
        state: common("skc_state")?,
        num: common("skc_num")?,
        dport: common("skc_dport")?,
        rcv_saddr: common("skc_rcv_saddr")?,
        daddr: common("skc_daddr")?,
        v6_rcv_saddr: common("skc_v6_rcv_saddr")?,
        v6_daddr: common("skc_v6_daddr")?,
        net: sock(&["__sk_common", "skc_net", "net"])?,
        net_inum: member_offset(&btf, "net", &["ns", "inum"])?,
        protocol: sock(&["sk_protocol"])?,
        bytes_received: tcp("bytes_received")?,
        bytes_sent: tcp("bytes_sent")?,
        bytes_retrans: tcp("bytes_retrans")?,
        flags: common("skc_flags")?,
        done_bit: enum_value(&btf, "sock_flags", "SOCK_DONE")?,
    })
}

/// The value of enumerator `name` of `enum ENUM`.
fn enum_value(btf: &Btf, enum_name: &str, name: &str) -> Result<u32, Error> {
    let missing = || Error::MissingField {
        what: format!("enum {enum_name}.{name}"),
    };
    let types = btf
        .resolve_types_by_name(enum_name)
        .map_err(|_| missing())?;
    for ty in types {
        if let Type::Enum(e) = ty {
            for member in &e.members {
                if btf.resolve_name(member).ok().as_deref() == Some(name) {
                    return Ok(member.val());
                }
            }
        }
    }
    Err(missing())
}

/// Byte offset of `struct NAME`'s member path `fields` (each step may sit inside anonymous
/// structs or unions).
fn member_offset(btf: &Btf, name: &str, fields: &[&str]) -> Result<u32, Error> {
    let missing = || Error::MissingField {
        what: format!("struct {name}.{}", fields.join(".")),
    };
    let mut current = named_struct(btf, name).ok_or_else(missing)?;
    let mut bits = 0u32;
    for (i, field) in fields.iter().enumerate() {
        let (offset, ty) = find_member(btf, &current, field).ok_or_else(missing)?;
        bits += offset;
        if i + 1 < fields.len() {
            current = match strip(btf, ty) {
                Some(Type::Struct(s)) | Some(Type::Union(s)) => s,
                _ => return Err(missing()),
            };
        }
    }
    if !bits.is_multiple_of(8) {
        return Err(missing());
    }
    Ok(bits / 8)
}

fn named_struct(btf: &Btf, name: &str) -> Option<Struct> {
    btf.resolve_types_by_name(name)
        .ok()?
        .into_iter()
        .find_map(|t| match t {
            Type::Struct(s) if !s.members.is_empty() => Some(s),
            _ => None,
        })
}

/// The bit offset and type of member `name`, looking inside anonymous members too.
fn find_member(btf: &Btf, within: &Struct, name: &str) -> Option<(u32, Type)> {
    for member in &within.members {
        let member_name = btf.resolve_name(member).unwrap_or_default();
        if member_name == name {
            if member.bitfield_size().is_some_and(|size| size != 0) {
                return None;
            }
            return Some((member.bit_offset(), btf.resolve_chained_type(member).ok()?));
        }
        if member_name.is_empty()
            && let Some(Type::Struct(inner) | Type::Union(inner)) =
                strip(btf, btf.resolve_chained_type(member).ok()?)
            && let Some((offset, ty)) = find_member(btf, &inner, name)
        {
            return Some((member.bit_offset() + offset, ty));
        }
    }
    None
}

/// The type under typedefs and qualifiers.
fn strip(btf: &Btf, mut ty: Type) -> Option<Type> {
    for _ in 0..16 {
        let next = match &ty {
            Type::Typedef(t) => btf.resolve_chained_type(t).ok()?,
            Type::Volatile(t) => btf.resolve_chained_type(t).ok()?,
            Type::Const(t) => btf.resolve_chained_type(t).ok()?,
            Type::Restrict(t) => btf.resolve_chained_type(t).ok()?,
            Type::TypeTag(t) => btf.resolve_chained_type(t).ok()?,
            _ => return Some(ty),
        };
        ty = next;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    // The running kernel's BTF: every machine of this project has it (the monitor needs it).
    #[test]
    fn the_running_kernels_offsets_are_found_and_plausible() {
        let offsets = from_file(Path::new(VMLINUX_BTF)).expect("this kernel's BTF");
        // sock_common starts struct sock; its addresses come first (a stable fact since 4.x).
        assert_eq!(offsets.daddr, 0);
        assert_eq!(offsets.rcv_saddr, 4);
        assert!(offsets.dport > offsets.rcv_saddr && offsets.num == offsets.dport + 2);
        assert!(offsets.v6_daddr > offsets.family);
        assert!(offsets.bytes_received > 1000 && offsets.bytes_sent > 1000);
        // enum sock_flags { SOCK_DEAD, SOCK_DONE, … } since forever.
        assert_eq!(offsets.done_bit, 1);
    }

    #[test]
    fn an_unknown_member_is_named_in_the_error() {
        let btf = Btf::from_file(VMLINUX_BTF).expect("this kernel's BTF");
        let err = member_offset(&btf, "sock", &["__sk_common", "no_such_field"]).unwrap_err();
        assert!(
            err.to_string()
                .contains("struct sock.__sk_common.no_such_field")
        );
    }
}
