//! Disk image format inspection: what an uploaded image really is, and whether it is safe to hand to a hypervisor.
//!
//! # The threat
//!
//! A disk image is not always "just the disk". Several formats carry, in their header, the *names of other
//! files* that the program opening the image (`qemu-img`, `qemu`, the image cache of a compute node, a
//! conversion task) will open and read on the **host**:
//!
//! * a qcow2 image may name a *backing file* (reads fall through to it) or an *external data file* (all guest
//!   data lives there) — CVE-2024-32498 / OSSA-2024-001 used a qcow2 `data_file` pointing at a host path such as
//!   `/etc/shadow` or a block device, so that the booted guest (or a converted copy of the image) contains the
//!   host's file;
//! * a VMDK may be a text *descriptor* whose extents are other files (`RW 2048 FLAT "/etc/passwd" 0`,
//!   CVE-2022-47951), or name a parent disk with `parentFileNameHint`;
//! * VHD and VHDX *differencing* disks name a parent image;
//! * a file can be several formats at once (a *polyglot*): an ISO 9660 that also starts with a qcow2 header is
//!   booted as a CD by one program and opened as qcow2 (with its backing file) by another.
//!
//! The 2024 fixes in Glance, Cinder and Nova (OSSA-2024-001 and its follow-up OSSA-2024-002) answered this
//! class of bug with content inspection.
//!
//! A user who uploads such an image with `disk_format=raw` (or lies about the format) gets the host to read
//! files the user must never see. The defence, as in OpenStack Glance's format inspector (oslo.utils
//! `imageutils.format_inspector`), is to look at the bytes on upload: detect the real format, refuse dangerous
//! features, and refuse images whose content does not match their declared `disk_format`.
//!
//! # How it is used
//!
//! The upload path buffers the first [`HEAD_BYTES`] and the last [`TAIL_BYTES`] of the data, then calls
//! [`check`] with the image's declared `disk_format`. [`inspect`] is the lower-level detector. Nothing here
//! touches the file system, and every read of the buffers is bounds-checked: truncated or hostile input yields
//! "raw" or a refusal, never a panic.
//!
//! # Differences from Glance
//!
//! Stratus is a little stricter than Glance (whose `require_image_format_match` defaults to true):
//!
//! * `disk_format=raw` whose bytes are qcow2/vmdk/vhd/vhdx/vdi (or qed, luks) is refused; Glance only warns and
//!   still runs the detected format's safety checks.
//! * qcow2 also refuses the external-data-file *header extension*, not only the incompatible feature bit, and
//!   checks the version, cluster size and header length.
//! * VMDK refuses descriptor-only files outright (their data is, by construction, in other files), requires
//!   exactly one `SPARSE` extent, and refuses a non-empty `parentFileNameHint` anywhere in the descriptor area
//!   qemu reads.
//! * VHD is also recognised by its footer at the end of the file (a fixed-size VHD has no copy at the start),
//!   and VHD/VHDX differencing disks are refused.
//! * Inspection works on a fixed head and tail rather than a stream, so two things are only seen when they fall
//!   inside [`HEAD_BYTES`]: the VHDX metadata (virtual size, parent flags) and the footer of a VMDK whose grain
//!   directory is "at the end". In both cases the virtual size is reported as unknown rather than guessed.
//! * A malformed MBR does not fail the upload: the bytes are simply not reported as a partitioned (`gpt`) disk.
//!   An MBR cannot make a host open anything, so for `raw` this changes nothing, and `disk_format=gpt` still
//!   requires a sane partition table.
//! * `aki`, `ari`, `ami` and `ploop` (formats the inspector cannot parse) are accepted when the bytes are raw,
//!   as in Glance, and also when they carry an MBR (an AMI is a whole partitioned disk; Glance would call that
//!   `gpt` and refuse it). Any recognised format other than those is refused for them (an ISO too, as in
//!   Glance), and no virtual size is reported. An unknown `disk_format` is handled the same way.

use std::fmt;

/// Bytes from the start of the image the inspector needs (the upload path buffers this much).
///
/// 4 MiB covers every structure read here: the qcow2 header and its extensions live in the first cluster
/// (at most 2 MiB), the VMDK embedded descriptor is at most 1 MiB after sector 1, ISO 9660 volume descriptors
/// start at 32 KiB, and qemu places the VHDX metadata region at 3 MiB (1 MiB long). A VHDX whose metadata
/// region lies further out is still recognised, with an unknown virtual size.
pub const HEAD_BYTES: usize = 4 * 1024 * 1024;

/// Bytes from the end of the image: the VHD footer (a fixed-size VHD has its only footer in the last sector).
///
/// A streamOptimized VMDK whose grain directory is "at the end" keeps a footer in its last three sectors
/// (1536 bytes); that footer is verified only when the whole image fits in [`HEAD_BYTES`]. It cannot name
/// files (qemu reads only sizes and offsets from it), so for larger images it is left unchecked and the
/// virtual size, which qemu takes from it, is reported as unknown.
pub const TAIL_BYTES: usize = 512;

/// An image format as recognised from its bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Format {
    /// No known structure: a plain disk (or anything else).
    Raw,
    /// QEMU copy-on-write v2/v3.
    Qcow2,
    /// VMware virtual disk (sparse extent with embedded descriptor, or a descriptor file).
    Vmdk,
    /// Microsoft Virtual PC / Hyper-V VHD (qemu calls it `vpc`).
    Vhd,
    /// Hyper-V VHDX.
    Vhdx,
    /// VirtualBox disk image.
    Vdi,
    /// ISO 9660 / UDF optical disc image.
    Iso,
    /// A raw disk that starts with a sane MBR or GPT protective MBR (Glance's `gpt` disk format).
    Gpt,
    /// QEMU enhanced disk: recognised only to be refused (it supports backing files and nobody uses it).
    Qed,
    /// LUKS v1 encrypted volume.
    Luks,
}

impl Format {
    /// The Glance `disk_format` name of this format.
    pub fn name(&self) -> &'static str {
        match self {
            Format::Raw => "raw",
            Format::Qcow2 => "qcow2",
            Format::Vmdk => "vmdk",
            Format::Vhd => "vhd",
            Format::Vhdx => "vhdx",
            Format::Vdi => "vdi",
            Format::Iso => "iso",
            Format::Gpt => "gpt",
            Format::Qed => "qed",
            Format::Luks => "luks",
        }
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// What [`inspect`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Inspection {
    /// What the bytes are.
    pub format: Format,
    /// The disk size the guest sees, from the header (raw: the data size); `None` when it cannot be read.
    pub virtual_size: Option<u64>,
    /// Set (to a user-facing sentence) when the image has a dangerous or unsupported feature.
    pub unsafe_reason: Option<String>,
}

impl Inspection {
    fn new(format: Format, virtual_size: Option<u64>) -> Self {
        Inspection { format, virtual_size, unsafe_reason: None }
    }

    /// Marks the image unsafe; the first reason found is the one reported.
    fn refuse(&mut self, reason: impl Into<String>) {
        if self.unsafe_reason.is_none() {
            self.unsafe_reason = Some(reason.into());
        }
    }
}

/// Look at the image: `head` is its first min(size, [`HEAD_BYTES`]) bytes, `tail` its last
/// min(size, [`TAIL_BYTES`]), `size` its full length.
///
/// Every "header" format (one that qemu recognises by a magic number at a fixed place: qcow2, qed, vmdk, vhd,
/// vhdx, vdi, luks) is looked for. One of them wins; two at once, or one together with an ISO 9660 volume or
/// a partition table, is a polyglot and is marked unsafe (Glance refuses those too). Without a header format a
/// VHD footer at the end means a fixed-size VHD, then an ISO (possibly with a hybrid MBR), then a partitioned
/// disk; anything else is raw.
pub fn inspect(head: &[u8], tail: &[u8], size: u64) -> Inspection {
    let mut headers: Vec<Inspection> = [
        inspect_qcow2(head),
        inspect_qed(head),
        inspect_vmdk(head, tail, size),
        inspect_vhd_head(head),
        inspect_vhdx(head),
        inspect_vdi(head),
        inspect_luks(head, size),
    ]
    .into_iter()
    .flatten()
    .collect();
    let iso = inspect_iso(head);
    let partitioned = has_partition_table(head);

    if headers.len() > 1 {
        let names: Vec<&str> = headers.iter().map(|i| i.format.name()).collect();
        let reason = format!(
            "Image data matches several disk formats at once ({}); such files are not allowed",
            names.join(", ")
        );
        let mut first = headers.swap_remove(0);
        first.unsafe_reason = Some(reason);
        return first;
    }
    if let Some(mut found) = headers.pop() {
        let other = if iso.is_some() {
            Some("an ISO 9660 image")
        } else if partitioned {
            Some("a partitioned disk")
        } else {
            None
        };
        if let Some(other) = other {
            found.unsafe_reason = Some(format!(
                "Image data is both a {} image and {other}; such files are not allowed",
                found.format.name()
            ));
        }
        return found;
    }
    if let Some(vhd) = inspect_vhd_tail(tail) {
        return vhd;
    }
    if let Some(virtual_size) = iso {
        return Inspection::new(Format::Iso, virtual_size);
    }
    if partitioned {
        return Inspection::new(Format::Gpt, Some(size));
    }
    Inspection::new(Format::Raw, Some(size))
}

/// The upload check. `declared` is the image's disk_format (raw, qcow2, vmdk, vhd, vhdx, vdi, iso, gpt, ploop,
/// aki, ari, ami). Ok(virtual_size) when acceptable; Err(reason) — a clear, user-facing sentence — when not.
///
/// * Any unsafe feature (see [`inspect`]) is refused, whatever the declared format.
/// * `qcow2`, `vmdk`, `vhd`, `vhdx`, `vdi`, `iso`, `gpt` must be detected as exactly that format; the virtual
///   size comes from the header (`None` when the header does not say, e.g. a VHDX whose metadata lies beyond
///   [`HEAD_BYTES`]).
/// * `raw` must not be a disguised container format; a raw disk with a partition table, or an ISO, is fine
///   raw, and its virtual size is `size`.
/// * Anything else (`aki`, `ari`, `ami`, `ploop`, unknown names) cannot be inspected: it is accepted when the
///   bytes are raw or a partitioned disk, with no virtual size.
pub fn check(declared: &str, head: &[u8], tail: &[u8], size: u64) -> Result<Option<u64>, String> {
    let found = inspect(head, tail, size);
    if let Some(reason) = found.unsafe_reason {
        return Err(reason);
    }
    let declared = declared.to_ascii_lowercase();
    let mismatch = || format!("Image data is not in the declared format {declared} (it looks like {})", found.format);
    match declared.as_str() {
        "raw" => match found.format {
            Format::Raw | Format::Gpt | Format::Iso => Ok(Some(size)),
            _ => Err(mismatch()),
        },
        "qcow2" | "vmdk" | "vhd" | "vhdx" | "vdi" | "iso" | "gpt" => {
            if found.format.name() == declared {
                Ok(found.virtual_size)
            } else {
                Err(mismatch())
            }
        }
        _ => match found.format {
            Format::Raw | Format::Gpt => Ok(None),
            _ => Err(mismatch()),
        },
    }
}

// ---------------------------------------------------------------------------------------------------------
// Bounds-checked readers. Every access to image bytes goes through these (or `get`), so hostile offsets and
// truncated buffers turn into `None`, never into a panic.

fn bytes(b: &[u8], off: usize, len: usize) -> Option<&[u8]> {
    b.get(off..off.checked_add(len)?)
}

fn array<const N: usize>(b: &[u8], off: usize) -> Option<[u8; N]> {
    bytes(b, off, N)?.try_into().ok()
}

fn be16(b: &[u8], off: usize) -> Option<u16> {
    array(b, off).map(u16::from_be_bytes)
}

fn be32(b: &[u8], off: usize) -> Option<u32> {
    array(b, off).map(u32::from_be_bytes)
}

fn be64(b: &[u8], off: usize) -> Option<u64> {
    array(b, off).map(u64::from_be_bytes)
}

fn le16(b: &[u8], off: usize) -> Option<u16> {
    array(b, off).map(u16::from_le_bytes)
}

fn le32(b: &[u8], off: usize) -> Option<u32> {
    array(b, off).map(u32::from_le_bytes)
}

fn le64(b: &[u8], off: usize) -> Option<u64> {
    array(b, off).map(u64::from_le_bytes)
}

/// The first `len` bytes of `b` (all of it when shorter).
fn prefix(b: &[u8], len: usize) -> &[u8] {
    b.get(..len).unwrap_or(b)
}

/// `b` up to (not including) its first NUL byte.
fn until_nul(b: &[u8]) -> &[u8] {
    match b.iter().position(|&c| c == 0) {
        Some(end) => prefix(b, end),
        None => b,
    }
}

/// The position of the first case-insensitive occurrence of `needle` in `hay` at or after `from`.
fn find_ci(hay: &[u8], needle: &[u8], from: usize) -> Option<usize> {
    if needle.is_empty() {
        return None;
    }
    let rest = hay.get(from..)?;
    rest.windows(needle.len()).position(|w| w.eq_ignore_ascii_case(needle)).map(|p| p + from)
}

/// A Microsoft GUID in its on-disk (mixed-endian) byte order.
const fn ms_guid(d1: u32, d2: u16, d3: u16, d4: [u8; 8]) -> [u8; 16] {
    let a = d1.to_le_bytes();
    let b = d2.to_le_bytes();
    let c = d3.to_le_bytes();
    [a[0], a[1], a[2], a[3], b[0], b[1], c[0], c[1], d4[0], d4[1], d4[2], d4[3], d4[4], d4[5], d4[6], d4[7]]
}

// ---------------------------------------------------------------------------------------------------------
// qcow2 (big-endian): magic, version u32 @4, backing_file_offset u64 @8, cluster_bits u32 @20, size u64 @24,
// v3 only: incompatible_features u64 @72, header_length u32 @100. Header extensions follow the header.

const QCOW2_MAGIC: &[u8] = b"QFI\xfb";
/// Incompatible feature bit 2: guest data lives in an external file.
const QCOW2_INCOMPAT_DATA_FILE: u64 = 1 << 2;
/// Incompatible features qemu defines: dirty, corrupt, external data file, compression type, extended L2.
const QCOW2_INCOMPAT_KNOWN: u64 = 0b1_1111;
/// Header extension naming the external data file ("DATA").
const QCOW2_EXT_DATA_FILE: u32 = 0x4441_5441;
const QCOW2_MIN_CLUSTER_BITS: u32 = 9;
const QCOW2_MAX_CLUSTER_BITS: u32 = 21;

struct Qcow2Header {
    version: u32,
    backing_file_offset: u64,
    cluster_bits: u32,
    size: u64,
    incompatible: u64,
    header_length: u32,
}

fn qcow2_header(b: &[u8]) -> Option<Qcow2Header> {
    let version = be32(b, 4)?;
    let (incompatible, header_length) = match version {
        2 => {
            bytes(b, 0, 72)?;
            (0, 72)
        }
        _ => (be64(b, 72)?, be32(b, 100)?),
    };
    Some(Qcow2Header {
        version,
        backing_file_offset: be64(b, 8)?,
        cluster_bits: be32(b, 20)?,
        size: be64(b, 24)?,
        incompatible,
        header_length,
    })
}

fn inspect_qcow2(head: &[u8]) -> Option<Inspection> {
    if !head.starts_with(QCOW2_MAGIC) {
        return None;
    }
    let mut found = Inspection::new(Format::Qcow2, None);
    let version = be32(head, 4);
    if let Some(v) = version.filter(|v| *v != 2 && *v != 3) {
        found.refuse(format!("qcow2 image has unsupported version {v} (only versions 2 and 3 are allowed)"));
        return Some(found);
    }
    let Some(h) = qcow2_header(head) else {
        found.refuse("qcow2 image header is truncated");
        return Some(found);
    };
    found.virtual_size = Some(h.size);
    if h.backing_file_offset != 0 {
        found.refuse("qcow2 image has a backing file, which is not allowed");
    }
    if h.incompatible & QCOW2_INCOMPAT_DATA_FILE != 0 {
        found.refuse("qcow2 image uses an external data file, which is not allowed");
    }
    let unknown = h.incompatible & !QCOW2_INCOMPAT_KNOWN;
    if unknown != 0 {
        found
            .refuse(format!("qcow2 image sets unknown incompatible feature bits ({unknown:#x}), which is not allowed"));
    }
    if !(QCOW2_MIN_CLUSTER_BITS..=QCOW2_MAX_CLUSTER_BITS).contains(&h.cluster_bits) {
        found.refuse(format!("qcow2 image has an invalid cluster size (cluster_bits {})", h.cluster_bits));
        return Some(found);
    }
    let cluster_size = 1u64 << h.cluster_bits;
    if h.version == 3 && (h.header_length < 104 || u64::from(h.header_length) > cluster_size) {
        found.refuse(format!("qcow2 image has an invalid header length ({})", h.header_length));
        return Some(found);
    }
    if qcow2_has_data_file_extension(head, u64::from(h.header_length), cluster_size) {
        found.refuse("qcow2 image uses an external data file, which is not allowed");
    }
    Some(found)
}

/// Walks the header extensions (type u32, length u32, data padded to 8 bytes, up to a type-0 end marker or
/// the end of the first cluster) looking for the external data file name.
fn qcow2_has_data_file_extension(head: &[u8], start: u64, cluster_size: u64) -> bool {
    let end = cluster_size.min(head.len() as u64);
    let mut off = start;
    while off.saturating_add(8) <= end {
        let Ok(at) = usize::try_from(off) else { return false };
        let (Some(kind), Some(len)) = (be32(head, at), be32(head, at + 4)) else { return false };
        match kind {
            0 => return false,
            QCOW2_EXT_DATA_FILE => return true,
            _ => off = off + 8 + u64::from(len).next_multiple_of(8),
        }
    }
    false
}

// ---------------------------------------------------------------------------------------------------------
// QED and LUKS: recognised so that they are never mistaken for raw.

fn inspect_qed(head: &[u8]) -> Option<Inspection> {
    if !head.starts_with(b"QED\0") {
        return None;
    }
    let mut found = Inspection::new(Format::Qed, None);
    found.refuse("QED images are not supported (the format can refer to a backing file)");
    Some(found)
}

/// LUKS v1 (big-endian): magic, version u16 @6, payload offset in sectors u32 @104.
fn inspect_luks(head: &[u8], size: u64) -> Option<Inspection> {
    if !head.starts_with(b"LUKS\xba\xbe") {
        return None;
    }
    let mut found = Inspection::new(Format::Luks, None);
    match be16(head, 6) {
        Some(1) => {
            found.virtual_size =
                be32(head, 104).and_then(|sectors| size.checked_sub(u64::from(sectors).saturating_mul(512)))
        }
        Some(v) => found.refuse(format!("LUKS version {v} images are not supported")),
        None => found.refuse("LUKS header is truncated"),
    }
    Some(found)
}

// ---------------------------------------------------------------------------------------------------------
// VMDK. A "hosted sparse extent" starts with a little-endian header: magic "KDMV", version u32 @4,
// capacity (sectors) u64 @12, descriptor offset (sectors) u64 @28, descriptor size (sectors) u64 @36,
// grain directory offset u64 @56. The text descriptor follows at sector 1. A VMDK can also be a bare text
// descriptor whose extents are other files — those are always refused.

const VMDK_SPARSE_MAGIC: &[u8] = b"KDMV";
const VMDK_COWD_MAGIC: &[u8] = b"COWD";
/// Grain directory offset meaning "read the real header from the footer at the end of the file".
const VMDK_GD_AT_END: u64 = u64::MAX;
/// Largest descriptor qemu accepts.
const VMDK_DESC_MAX: usize = (1 << 20) - 1;
/// qemu looks for `parentFileNameHint` in this many bytes from sector 1, whatever the header says.
const VMDK_QEMU_DESC_WINDOW: usize = 20 * 512;
const VMDK_MARKER_FOOTER: u32 = 3;
/// Footer marker, footer (a header copy) and end-of-stream marker.
const VMDK_FOOTER_LEN: usize = 3 * 512;

struct VmdkHeader {
    version: u32,
    capacity: u64,
    desc_sector: u64,
    desc_sectors: u64,
    gd_offset: u64,
}

fn vmdk_header(b: &[u8]) -> Option<VmdkHeader> {
    if !b.starts_with(VMDK_SPARSE_MAGIC) {
        return None;
    }
    Some(VmdkHeader {
        version: le32(b, 4)?,
        capacity: le64(b, 12)?,
        desc_sector: le64(b, 28)?,
        desc_sectors: le64(b, 36)?,
        gd_offset: le64(b, 56)?,
    })
}

fn inspect_vmdk(head: &[u8], tail: &[u8], size: u64) -> Option<Inspection> {
    if head.starts_with(VMDK_SPARSE_MAGIC) {
        return Some(inspect_vmdk_sparse(head, tail, size));
    }
    let mut found = Inspection::new(Format::Vmdk, None);
    if head.starts_with(VMDK_COWD_MAGIC) {
        found.refuse("vmdk image uses the legacy COWD sparse format, which is not allowed");
        return Some(found);
    }
    if is_vmdk_descriptor_file(head) {
        found.refuse(
            "vmdk image is a descriptor file whose data lives in other files (its extents), which is not allowed",
        );
        return Some(found);
    }
    None
}

fn inspect_vmdk_sparse(head: &[u8], tail: &[u8], size: u64) -> Inspection {
    let mut found = Inspection::new(Format::Vmdk, None);
    let Some(h) = vmdk_header(head) else {
        found.refuse("vmdk image header is truncated");
        return found;
    };
    if !(1..=3).contains(&h.version) {
        found.refuse(format!("vmdk image has unsupported version {}", h.version));
        return found;
    }
    found.virtual_size = h.capacity.checked_mul(512);

    let area = head.get(512..).unwrap_or(&[]);
    if vmdk_names_parent(prefix(area, VMDK_DESC_MAX.max(VMDK_QEMU_DESC_WINDOW))) {
        found.refuse("vmdk image refers to a parent disk (parentFileNameHint), which is not allowed");
    }
    if h.desc_sector != 1 || h.desc_sectors == 0 {
        found.refuse("vmdk image has no embedded descriptor, which is not allowed");
    } else {
        let len = usize::try_from(h.desc_sectors).ok().and_then(|n| n.checked_mul(512)).unwrap_or(VMDK_DESC_MAX);
        let descriptor = until_nul(prefix(area, len.min(VMDK_DESC_MAX)));
        if let Err(reason) = check_vmdk_descriptor(descriptor) {
            found.refuse(reason);
        }
    }
    if h.gd_offset == VMDK_GD_AT_END {
        // qemu takes the real header from the footer. When the whole image is buffered it must be well formed
        // and agree with the header; otherwise it is out of sight and so is the virtual size.
        let whole = head.len() as u64 == size;
        let end = if whole { head } else { tail };
        match end.len().checked_sub(VMDK_FOOTER_LEN).and_then(|at| end.get(at..)) {
            Some(footer) => match vmdk_footer_capacity(&h, footer) {
                Some(capacity) => found.virtual_size = capacity.checked_mul(512),
                None => found.refuse("vmdk image has an invalid footer"),
            },
            None if whole => found.refuse("vmdk image is too short to hold its footer"),
            None => found.virtual_size = None,
        }
    }
    found
}

/// Whether a `parentFileNameHint` with a non-empty value appears anywhere in the descriptor area (qemu finds
/// it with a plain substring search, even inside comments).
fn vmdk_names_parent(area: &[u8]) -> bool {
    const KEY: &[u8] = b"parentFileNameHint";
    let mut from = 0;
    while let Some(at) = find_ci(area, KEY, from) {
        let value = area.get(at + KEY.len()..).unwrap_or(&[]);
        let value = value.trim_ascii_start();
        let value = value.strip_prefix(b"=").unwrap_or(value).trim_ascii_start();
        if !value.starts_with(b"\"\"") {
            return true;
        }
        from = at + KEY.len();
    }
    false
}

/// Cautious descriptor parse, as Glance does: every line must be a comment, a `ddb.*` entry, a `key=value`
/// header field or an extent; the create type must be monolithicSparse or streamOptimized; and there must be
/// exactly one extent, a SPARSE one (the image itself) that names no path.
fn check_vmdk_descriptor(text: &[u8]) -> Result<(), String> {
    let Some(text) = std::str::from_utf8(text).ok().filter(|t| t.is_ascii()) else {
        return Err("vmdk image descriptor is not plain ASCII text".into());
    };
    let mut create_type = None;
    let mut extents = Vec::new();
    for line in text.lines().map(str::trim) {
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let first = line.split_ascii_whitespace().next().unwrap_or_default();
        if ["rw", "rdonly", "noaccess"].iter().any(|a| first.eq_ignore_ascii_case(a)) {
            extents.push(line);
            continue;
        }
        if line.get(..3).is_some_and(|p| p.eq_ignore_ascii_case("ddb")) {
            continue;
        }
        if let Some((key, value)) = line.split_once('=') {
            let key = key.trim();
            if !key.is_empty() && !key.contains(|c: char| c.is_ascii_whitespace()) {
                let value = value.trim().trim_matches('"');
                if key.eq_ignore_ascii_case("createType") {
                    create_type = Some(value);
                } else if key.eq_ignore_ascii_case("parentFileNameHint") && !value.is_empty() {
                    return Err("vmdk image refers to a parent disk (parentFileNameHint), which is not allowed".into());
                }
                continue;
            }
        }
        return Err("vmdk image descriptor contains a line that is not understood, which is not allowed".into());
    }
    match create_type {
        Some(t) if t.eq_ignore_ascii_case("monolithicSparse") || t.eq_ignore_ascii_case("streamOptimized") => {}
        Some(t) => {
            return Err(format!(
                "vmdk image has createType \"{}\"; only monolithicSparse and streamOptimized are allowed",
                t.chars().take(64).collect::<String>()
            ));
        }
        None => return Err("vmdk image descriptor has no createType".into()),
    }
    let [extent] = extents.as_slice() else {
        return Err(format!(
            "vmdk image descriptor lists {} extents; exactly one extent stored in the image itself is allowed",
            extents.len()
        ));
    };
    let kind = extent.split_ascii_whitespace().nth(2).unwrap_or_default();
    if !kind.eq_ignore_ascii_case("SPARSE") {
        return Err("vmdk image has an extent stored in another file, which is not allowed".into());
    }
    if extent.contains(['/', '\\']) {
        return Err("vmdk image extent names a file path, which is not allowed".into());
    }
    Ok(())
}

/// The last [`VMDK_FOOTER_LEN`] bytes of a streamOptimized VMDK whose grain directory is "at the end": a
/// footer marker sector, a copy of the header (which qemu uses instead of the real one), and an end-of-stream
/// marker. Returns the footer's capacity when the three are well formed and the copy agrees with the header.
fn vmdk_footer_capacity(h: &VmdkHeader, last: &[u8]) -> Option<u64> {
    let (marker, rest) = last.split_at_checked(512)?;
    let (footer, eos) = rest.split_at_checked(512)?;
    let zero = |b: &[u8]| b.iter().all(|&c| c == 0);
    let marker_ok = le32(marker, 8)? == 0 && le32(marker, 12)? == VMDK_MARKER_FOOTER && zero(marker.get(16..)?);
    let f = vmdk_header(footer)?;
    let footer_ok = f.version == h.version
        && f.capacity == h.capacity
        && f.desc_sector == h.desc_sector
        && f.desc_sectors == h.desc_sectors
        && f.gd_offset != VMDK_GD_AT_END;
    (marker_ok && footer_ok && zero(eos)).then_some(f.capacity)
}

/// A text descriptor file: what qemu's probe accepts (comment and blank lines, then `version=1..3`), or — as
/// Glance checks — a printable-text start with a `createType` field.
fn is_vmdk_descriptor_file(head: &[u8]) -> bool {
    qemu_probes_vmdk_descriptor(prefix(head, 2048)) || looks_like_text_descriptor(head)
}

fn qemu_probes_vmdk_descriptor(b: &[u8]) -> bool {
    let mut i = 0;
    while let Some(&c) = b.get(i) {
        match c {
            b'#' => {
                while b.get(i).is_some_and(|&c| c != b'\n') {
                    i += 1;
                }
                i += 1;
            }
            b' ' => {
                while b.get(i) == Some(&b' ') {
                    i += 1;
                }
                if b.get(i) == Some(&b'\r') {
                    i += 1;
                }
                if b.get(i) != Some(&b'\n') {
                    return false;
                }
                i += 1;
            }
            _ => {
                let rest = b.get(i..).unwrap_or_default();
                return [b'1', b'2', b'3'].iter().any(|&v| {
                    let line = [b'v', b'e', b'r', b's', b'i', b'o', b'n', b'=', v];
                    rest.strip_prefix(&line[..]).is_some_and(|r| r.starts_with(b"\n") || r.starts_with(b"\r\n"))
                });
            }
        }
    }
    false
}

fn looks_like_text_descriptor(head: &[u8]) -> bool {
    let start = prefix(head, 512);
    if start.is_empty() || !start.iter().all(|&c| c.is_ascii_graphic() || c.is_ascii_whitespace()) {
        return false;
    }
    let text = until_nul(prefix(head, VMDK_DESC_MAX));
    let mut from = 0;
    while let Some(at) = find_ci(text, b"createType", from) {
        from = at + b"createType".len();
        if text.get(from..).unwrap_or_default().trim_ascii_start().starts_with(b"=") {
            return true;
        }
    }
    false
}

// ---------------------------------------------------------------------------------------------------------
// VHD (big-endian 512-byte footer): cookie "conectix", current size u64 @48, disk type u32 @60. Dynamic disks
// keep a copy at offset 0; fixed disks only have the one in the last sector.

const VHD_COOKIE: &[u8] = b"conectix";
const VHD_FOOTER_LEN: usize = 512;

fn inspect_vhd_head(head: &[u8]) -> Option<Inspection> {
    head.starts_with(VHD_COOKIE).then(|| inspect_vhd_footer(prefix(head, VHD_FOOTER_LEN)))
}

fn inspect_vhd_tail(tail: &[u8]) -> Option<Inspection> {
    let footer = tail.get(tail.len().checked_sub(VHD_FOOTER_LEN)?..)?;
    footer.starts_with(VHD_COOKIE).then(|| inspect_vhd_footer(footer))
}

fn inspect_vhd_footer(footer: &[u8]) -> Inspection {
    let mut found = Inspection::new(Format::Vhd, None);
    let (Some(current_size), Some(disk_type)) = (be64(footer, 48), be32(footer, 60)) else {
        found.refuse("vhd footer is truncated");
        return found;
    };
    found.virtual_size = Some(current_size);
    match disk_type {
        2 | 3 => {} // fixed, dynamic
        4 => found.refuse("vhd image is a differencing disk that refers to a parent image, which is not allowed"),
        other => found.refuse(format!("vhd image has unknown disk type {other}")),
    }
    found
}

// ---------------------------------------------------------------------------------------------------------
// VHDX (little-endian): "vhdxfile" identifier; region tables at 192 KiB and 256 KiB ("regi", entry count u32
// @8, 32-byte entries from @16: GUID, file offset u64, length u32, required u32); the metadata region
// ("metadata", entry count u16 @10, 32-byte entries from @32: GUID, offset u32 relative to the region, ...)
// holds the virtual disk size and the file parameters (flags bit 1: has a parent).

const VHDX_REGION_TABLES: [usize; 2] = [192 * 1024, 256 * 1024];
const VHDX_MAX_ENTRIES: usize = 2047;
const VHDX_METADATA_REGION: [u8; 16] =
    ms_guid(0x8B7C_A206, 0x4790, 0x4B9A, [0xB8, 0xFE, 0x57, 0x5F, 0x05, 0x0F, 0x88, 0x6E]);
const VHDX_FILE_PARAMETERS: [u8; 16] =
    ms_guid(0xCAA1_6737, 0xFA36, 0x4D43, [0xB3, 0xB6, 0x33, 0xF0, 0xAA, 0x44, 0xE7, 0x6B]);
const VHDX_VIRTUAL_DISK_SIZE: [u8; 16] =
    ms_guid(0x2FA5_4224, 0xCD1B, 0x4876, [0xB2, 0x11, 0x5D, 0xBE, 0xD8, 0x3B, 0xF4, 0xB8]);
const VHDX_PARENT_LOCATOR: [u8; 16] =
    ms_guid(0xA8D3_5F2D, 0xB30B, 0x454D, [0xAB, 0xF7, 0xD3, 0xD8, 0x48, 0x34, 0xAB, 0x0C]);
const VHDX_HAS_PARENT: u32 = 1 << 1;

fn inspect_vhdx(head: &[u8]) -> Option<Inspection> {
    if !head.starts_with(b"vhdxfile") {
        return None;
    }
    let mut found = Inspection::new(Format::Vhdx, None);
    if let Some(region) = vhdx_metadata_region(head) {
        vhdx_read_metadata(head, region, &mut found);
    }
    Some(found)
}

fn vhdx_metadata_region(head: &[u8]) -> Option<usize> {
    for table in VHDX_REGION_TABLES {
        if bytes(head, table, 4) != Some(b"regi") {
            continue;
        }
        let count = usize::try_from(le32(head, table + 8)?).ok()?;
        if count > VHDX_MAX_ENTRIES {
            continue;
        }
        for i in 0..count {
            let entry = table + 16 + 32 * i;
            if array::<16>(head, entry)? == VHDX_METADATA_REGION {
                return usize::try_from(le64(head, entry + 16)?).ok();
            }
        }
    }
    None
}

/// Reads what it can of the metadata table; entries or items beyond the buffered head are left unknown.
fn vhdx_read_metadata(head: &[u8], region: usize, found: &mut Inspection) -> Option<()> {
    if bytes(head, region, 8)? != b"metadata" {
        return None;
    }
    let count = usize::from(le16(head, region.checked_add(10)?)?);
    if count > VHDX_MAX_ENTRIES {
        return None;
    }
    for i in 0..count {
        let entry = region.checked_add(32 + 32 * i)?;
        let id = array::<16>(head, entry)?;
        let item = region.checked_add(usize::try_from(le32(head, entry + 16)?).ok()?)?;
        if id == VHDX_VIRTUAL_DISK_SIZE {
            found.virtual_size = le64(head, item);
        } else if id == VHDX_PARENT_LOCATOR
            || (id == VHDX_FILE_PARAMETERS
                && item.checked_add(4).and_then(|at| le32(head, at)).is_some_and(|f| f & VHDX_HAS_PARENT != 0))
        {
            found.refuse("vhdx image is a differencing disk that refers to a parent image, which is not allowed");
        }
    }
    Some(())
}

// ---------------------------------------------------------------------------------------------------------
// VDI (little-endian): signature u32 @0x40, image type u32 @0x4C (1 normal, 2 fixed, 3 undo, 4 differencing),
// disk size u64 @0x170.

const VDI_SIGNATURE: u32 = 0xBEDA_107F;

fn inspect_vdi(head: &[u8]) -> Option<Inspection> {
    if le32(head, 0x40) != Some(VDI_SIGNATURE) {
        return None;
    }
    let mut found = Inspection::new(Format::Vdi, le64(head, 0x170));
    match le32(head, 0x4C) {
        Some(1 | 2) => {}
        Some(t) => found.refuse(format!("vdi image type {t} is not supported (only normal and fixed images are)")),
        None => found.refuse("vdi header is truncated"),
    }
    Some(found)
}

// ---------------------------------------------------------------------------------------------------------
// ISO 9660 / UDF: the volume descriptor set starts at sector 16 (32 KiB) with 2 KiB descriptors: type byte,
// 5-byte identifier. The primary volume descriptor (type 1) gives the volume space size (u32 LE @80, in
// blocks) and the logical block size (u16 LE @128).

const ISO_FIRST_DESCRIPTOR: usize = 16 * 2048;
const ISO_DESCRIPTOR_LEN: usize = 2048;

/// `Some(virtual_size)` when the bytes hold an ISO 9660 (or UDF) volume.
fn inspect_iso(head: &[u8]) -> Option<Option<u64>> {
    let mut is_iso = false;
    let mut virtual_size = None;
    for i in 0..64 {
        let at = ISO_FIRST_DESCRIPTOR + i * ISO_DESCRIPTOR_LEN;
        let (Some(kind), Some(id)) = (head.get(at).copied(), bytes(head, at + 1, 5)) else { break };
        match id {
            b"CD001" => {
                is_iso = true;
                if kind == 1 && virtual_size.is_none() {
                    let blocks = le32(head, at + 80).map(u64::from);
                    let block_size = le16(head, at + 128).map(u64::from);
                    virtual_size = blocks.zip(block_size).map(|(n, s)| n * s).filter(|s| *s > 0);
                }
                if kind == 255 {
                    break;
                }
            }
            b"NSR02" | b"NSR03" => is_iso = true,
            b"BEA01" | b"TEA01" | b"BOOT2" | b"CDW02" => {}
            _ => break,
        }
    }
    is_iso.then_some(virtual_size)
}

// ---------------------------------------------------------------------------------------------------------
// MBR / GPT protective MBR: signature 0xAA55 @510, four 16-byte partition entries from @446 (boot flag,
// start CHS, type, end CHS, start LBA u32, sectors u32).

/// Whether the first sector is a sane MBR (Glance's `mbr` checks): not a FAT boot sector, valid boot flags, at
/// least one partition, and a GPT protective entry only alone in slot 0, starting at CHS 0/2/0 and LBA 1.
fn has_partition_table(head: &[u8]) -> bool {
    if le16(head, 510) != Some(0xAA55) {
        return false;
    }
    // A FAT volume boot record has the same signature; two FATs on a fixed disk give it away.
    if head.get(0x10) == Some(&2) && head.get(0x15) == Some(&0xF8) {
        return false;
    }
    let mut used = Vec::new();
    let mut protective = None;
    for slot in 0..4 {
        let Some(e) = array::<16>(head, 446 + 16 * slot) else { return false };
        if e[0] != 0x00 && e[0] != 0x80 {
            return false;
        }
        if e[4] != 0 {
            used.push(slot);
        }
        if e[4] == 0xEE {
            if (e[1], e[2], e[3]) != (0x00, 0x02, 0x00) || le32(&e, 8) != Some(1) {
                return false;
            }
            protective = Some(slot);
        }
    }
    match protective {
        Some(slot) => slot == 0 && used == [0],
        None => !used.is_empty(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Seek, SeekFrom};
    use std::path::{Path, PathBuf};
    use std::process::Command;
    use std::sync::atomic::{AtomicUsize, Ordering};

    const GIB: u64 = 1 << 30;

    /// A scratch directory for qemu-img samples, removed on drop.
    struct Scratch(PathBuf);

    impl Scratch {
        fn new(tag: &str) -> Self {
            static NEXT: AtomicUsize = AtomicUsize::new(0);
            let n = NEXT.fetch_add(1, Ordering::Relaxed);
            let dir = std::env::temp_dir().join(format!("stratus-image-format-{}-{n}-{tag}", std::process::id()));
            std::fs::create_dir_all(&dir).unwrap();
            Scratch(dir)
        }

        fn path(&self, name: &str) -> PathBuf {
            self.0.join(name)
        }

        /// Runs qemu-img in the scratch directory; a missing qemu-img fails the test loudly.
        fn qemu_img(&self, args: &[&str]) -> String {
            let out = match Command::new("qemu-img").args(args).current_dir(&self.0).output() {
                Ok(out) => out,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => panic!(
                    "qemu-img is not installed: these tests need it to build real disk images \
                     (install qemu-utils, e.g. `apt-get install qemu-utils`)"
                ),
                Err(e) => panic!("cannot run qemu-img: {e}"),
            };
            assert!(out.status.success(), "qemu-img {args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
            String::from_utf8_lossy(&out.stdout).into_owned()
        }

        fn create(&self, format: &str, name: &str, size: &str, options: &[&str]) -> Sample {
            let mut args = vec!["create", "-q", "-f", format];
            args.extend_from_slice(options);
            args.extend_from_slice(&[name, size]);
            self.qemu_img(&args);
            Sample::read(&self.path(name))
        }

        /// The virtual size qemu itself reports when opening `name` as `format`.
        fn qemu_virtual_size(&self, format: &str, name: &str) -> u64 {
            let info = self.qemu_img(&["info", "--output=json", "-f", format, name]);
            let json: serde_json::Value = serde_json::from_str(&info).unwrap();
            json["virtual-size"].as_u64().unwrap()
        }
    }

    impl Drop for Scratch {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    /// What the upload path buffers of an image.
    struct Sample {
        head: Vec<u8>,
        tail: Vec<u8>,
        size: u64,
    }

    impl Sample {
        fn read(path: &Path) -> Self {
            let mut file = std::fs::File::open(path).unwrap();
            let size = file.metadata().unwrap().len();
            let mut head = vec![0; (HEAD_BYTES as u64).min(size) as usize];
            file.read_exact(&mut head).unwrap();
            let tail_len = (TAIL_BYTES as u64).min(size);
            file.seek(SeekFrom::Start(size - tail_len)).unwrap();
            let mut tail = vec![0; tail_len as usize];
            file.read_exact(&mut tail).unwrap();
            Sample { head, tail, size }
        }

        /// An in-memory image (head, tail and size all from the same bytes).
        fn bytes(data: &[u8]) -> Self {
            let head = prefix(data, HEAD_BYTES).to_vec();
            let tail = data[data.len().saturating_sub(TAIL_BYTES)..].to_vec();
            Sample { head, tail, size: data.len() as u64 }
        }

        fn inspect(&self) -> Inspection {
            inspect(&self.head, &self.tail, self.size)
        }

        fn check(&self, declared: &str) -> Result<Option<u64>, String> {
            check(declared, &self.head, &self.tail, self.size)
        }
    }

    /// Deterministic pseudo-random bytes (xorshift64*).
    fn noise(len: usize, mut seed: u64) -> Vec<u8> {
        (0..len)
            .map(|_| {
                seed ^= seed >> 12;
                seed ^= seed << 25;
                seed ^= seed >> 27;
                (seed.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 56) as u8
            })
            .collect()
    }

    fn assert_refused(result: Result<Option<u64>, String>, needle: &str) {
        match result {
            Err(reason) => assert!(reason.contains(needle), "refusal {reason:?} should mention {needle:?}"),
            Ok(v) => panic!("expected a refusal mentioning {needle:?}, got Ok({v:?})"),
        }
    }

    /// A minimal qcow2 v3 header (64 KiB clusters, no extensions).
    fn qcow2_v3_header(virtual_size: u64) -> Vec<u8> {
        let mut h = vec![0u8; 4096];
        h[0..4].copy_from_slice(QCOW2_MAGIC);
        h[4..8].copy_from_slice(&3u32.to_be_bytes());
        h[20..24].copy_from_slice(&16u32.to_be_bytes());
        h[24..32].copy_from_slice(&virtual_size.to_be_bytes());
        h[96..100].copy_from_slice(&4u32.to_be_bytes());
        h[100..104].copy_from_slice(&104u32.to_be_bytes());
        h
    }

    /// A minimal ISO 9660 image: a primary volume descriptor at 32 KiB and a terminator after it.
    fn iso_image(blocks: u32) -> Vec<u8> {
        let mut iso = vec![0u8; 64 * 1024];
        let pvd = ISO_FIRST_DESCRIPTOR;
        iso[pvd] = 1;
        iso[pvd + 1..pvd + 6].copy_from_slice(b"CD001");
        iso[pvd + 6] = 1;
        iso[pvd + 80..pvd + 84].copy_from_slice(&blocks.to_le_bytes());
        iso[pvd + 84..pvd + 88].copy_from_slice(&blocks.to_be_bytes());
        iso[pvd + 128..pvd + 130].copy_from_slice(&2048u16.to_le_bytes());
        iso[pvd + 130..pvd + 132].copy_from_slice(&2048u16.to_be_bytes());
        let end = pvd + ISO_DESCRIPTOR_LEN;
        iso[end] = 255;
        iso[end + 1..end + 6].copy_from_slice(b"CD001");
        iso
    }

    /// A raw disk with one Linux partition in a classic MBR.
    fn mbr_disk() -> Vec<u8> {
        let mut disk = noise(64 * 1024, 7);
        disk[446..510].fill(0);
        disk[446] = 0x80;
        disk[446 + 4] = 0x83;
        disk[446 + 8..446 + 12].copy_from_slice(&2048u32.to_le_bytes());
        disk[446 + 12..446 + 16].copy_from_slice(&100_000u32.to_le_bytes());
        disk[510] = 0x55;
        disk[511] = 0xAA;
        disk[0x10] = 0;
        disk
    }

    #[test]
    fn qcow2_from_qemu_img() {
        let s = Scratch::new("qcow2");
        let img = s.create("qcow2", "a.qcow2", "1G", &[]);
        assert_eq!(img.inspect(), Inspection::new(Format::Qcow2, Some(GIB)));
        assert_eq!(s.qemu_virtual_size("qcow2", "a.qcow2"), GIB);
        assert_eq!(img.check("qcow2"), Ok(Some(GIB)));
        // Declared as something else, the real format is named.
        assert_refused(img.check("raw"), "not in the declared format raw (it looks like qcow2)");
        assert_refused(img.check("vmdk"), "it looks like qcow2");
        assert_refused(img.check("iso"), "it looks like qcow2");
        assert_refused(img.check("ami"), "it looks like qcow2");
        assert_refused(img.check("ploop"), "it looks like qcow2");

        // Known incompatible features (extended L2 entries, bit 4) are fine.
        let l2 = s.create("qcow2", "l2.qcow2", "1G", &["-o", "extended_l2=on"]);
        assert_eq!(l2.check("qcow2"), Ok(Some(GIB)));
        // So is the legacy v2 header.
        let v2 = s.create("qcow2", "v2.qcow2", "2G", &["-o", "compat=0.10"]);
        assert_eq!(v2.check("qcow2"), Ok(Some(2 * GIB)));
    }

    #[test]
    fn qcow2_backing_file_is_refused() {
        let s = Scratch::new("backing");
        s.create("qcow2", "base.qcow2", "1G", &[]);
        let top = s.create("qcow2", "top.qcow2", "1G", &["-b", "base.qcow2", "-F", "qcow2"]);
        let found = top.inspect();
        assert_eq!(found.format, Format::Qcow2);
        assert_eq!(found.unsafe_reason.as_deref(), Some("qcow2 image has a backing file, which is not allowed"));
        for declared in ["qcow2", "raw", "iso", "aki"] {
            assert_refused(top.check(declared), "backing file");
        }
    }

    #[test]
    fn qcow2_external_data_file_is_refused() {
        let s = Scratch::new("datafile");
        let img = s.create("qcow2", "d.qcow2", "1G", &["-o", "data_file=x.raw"]);
        assert_refused(img.check("qcow2"), "external data file");
        assert_refused(img.check("raw"), "external data file");

        // The header extension naming the file is refused on its own, even without the feature bit.
        let mut head = img.head.clone();
        let features = be64(&head, 72).unwrap() & !QCOW2_INCOMPAT_DATA_FILE;
        head[72..80].copy_from_slice(&features.to_be_bytes());
        let header_length = u64::from(be32(&head, 100).unwrap());
        assert!(qcow2_has_data_file_extension(&head, header_length, 65536));
        assert_refused(check("qcow2", &head, &img.tail, img.size), "external data file");
    }

    #[test]
    fn qcow2_crafted_headers() {
        let good = qcow2_v3_header(5 * GIB);
        assert_eq!(check("qcow2", &good, &good, 1 << 20), Ok(Some(5 * GIB)));

        // An incompatible feature bit qemu does not know about.
        let mut bogus = good.clone();
        bogus[72..80].copy_from_slice(&(1u64 << 40).to_be_bytes());
        assert_refused(check("qcow2", &bogus, &bogus, 1 << 20), "unknown incompatible feature bits (0x10000000000)");

        let mut version = good.clone();
        version[4..8].copy_from_slice(&1u32.to_be_bytes());
        assert_refused(check("qcow2", &version, &version, 1 << 20), "unsupported version 1");

        let mut clusters = good.clone();
        clusters[20..24].copy_from_slice(&40u32.to_be_bytes());
        assert_refused(check("qcow2", &clusters, &clusters, 1 << 20), "invalid cluster size");

        let mut header_len = good.clone();
        header_len[100..104].copy_from_slice(&8u32.to_be_bytes());
        assert_refused(check("qcow2", &header_len, &header_len, 1 << 20), "invalid header length");

        // A data-file extension after another extension whose length is not a multiple of 8.
        let mut ext = good.clone();
        ext[104..108].copy_from_slice(&0xE279_2ACAu32.to_be_bytes());
        ext[108..112].copy_from_slice(&5u32.to_be_bytes());
        ext[112..117].copy_from_slice(b"qcow2");
        ext[120..124].copy_from_slice(&QCOW2_EXT_DATA_FILE.to_be_bytes());
        ext[124..128].copy_from_slice(&6u32.to_be_bytes());
        assert_refused(check("qcow2", &ext, &ext, 1 << 20), "external data file");

        // Disguised as raw (or as an ISO, or an AMI).
        for declared in ["raw", "iso", "ami", "vdi"] {
            assert_refused(check(declared, &good, &good, 1 << 20), "it looks like qcow2");
        }
    }

    #[test]
    fn vmdk_sparse_and_stream_optimized_are_accepted() {
        let s = Scratch::new("vmdk");
        for subformat in ["monolithicSparse", "streamOptimized"] {
            let name = format!("{subformat}.vmdk");
            let img = s.create("vmdk", &name, "1G", &["-o", &format!("subformat={subformat}")]);
            assert_eq!(img.inspect(), Inspection::new(Format::Vmdk, Some(GIB)), "{subformat}");
            assert_eq!(s.qemu_virtual_size("vmdk", &name), GIB);
            assert_eq!(img.check("vmdk"), Ok(Some(GIB)), "{subformat}");
            assert_refused(img.check("raw"), "it looks like vmdk");
        }
    }

    #[test]
    fn vmdk_with_external_extents_is_refused() {
        let s = Scratch::new("vmdkext");
        let flat = s.create("vmdk", "flat.vmdk", "1G", &["-o", "subformat=monolithicFlat"]);
        assert_eq!(flat.inspect().format, Format::Vmdk);
        assert_refused(flat.check("vmdk"), "descriptor file");
        assert_refused(flat.check("raw"), "descriptor file");

        let split = s.create("vmdk", "split.vmdk", "3G", &["-o", "subformat=twoGbMaxExtentSparse"]);
        assert_refused(split.check("vmdk"), "descriptor file");
        // Its extent files have no usable descriptor of their own.
        let extent = Sample::read(&s.path("split-s001.vmdk"));
        assert_eq!(extent.inspect().format, Format::Vmdk);
        assert!(extent.check("vmdk").is_err());

        // A hand-written descriptor pointing at a host file, with Windows line endings.
        let evil = b"# Disk DescriptorFile\r\nversion=1\r\ncreateType=\"monolithicFlat\"\r\nRW 2048 FLAT \"/etc/shadow\" 0\r\n";
        assert_refused(Sample::bytes(evil).check("raw"), "descriptor file");
        // Glance's looser rule: printable text that sets a createType.
        let loose = b"\n\nCID=fffffffe\ncreateType = \"vmfs\"\nRW 2048 VMFS \"/dev/sda\"\n";
        assert_refused(Sample::bytes(loose).check("raw"), "descriptor file");
    }

    /// Rewrites the embedded descriptor of a qemu-made sparse VMDK.
    fn with_descriptor(img: &Sample, descriptor: &str) -> Vec<u8> {
        let mut head = img.head.clone();
        let area = &mut head[512..512 + 20 * 512];
        area.fill(0);
        area[..descriptor.len()].copy_from_slice(descriptor.as_bytes());
        head
    }

    #[test]
    fn vmdk_descriptor_rules() {
        let s = Scratch::new("vmdkdesc");
        let img = s.create("vmdk", "s.vmdk", "1G", &[]);
        let check_desc = |d: &str| check("vmdk", &with_descriptor(&img, d), &img.tail, img.size);
        let base = "# Disk DescriptorFile\nversion=1\nCID=1\nparentCID=ffffffff\ncreateType=\"monolithicSparse\"\n";

        assert_eq!(
            check_desc(&format!("{base}RW 2097152 SPARSE \"s.vmdk\"\nddb.adapterType = \"ide\"\n")),
            Ok(Some(GIB))
        );
        assert_eq!(
            check_desc(&format!("{base}parentFileNameHint=\"\"\nRW 2097152 SPARSE \"s.vmdk\"\n")),
            Ok(Some(GIB))
        );
        assert_refused(
            check_desc(&format!("{base}parentFileNameHint=\"/var/lib/nova/base\"\nRW 2097152 SPARSE \"s.vmdk\"\n")),
            "parentFileNameHint",
        );
        // qemu finds the hint even in a comment.
        assert_refused(
            check_desc(&format!("{base}# parentFileNameHint=\"../other\"\nRW 2097152 SPARSE \"s.vmdk\"\n")),
            "parentFileNameHint",
        );
        assert_refused(check_desc(&format!("{base}RW 2097152 SPARSE \"/etc/passwd\"\n")), "file path");
        assert_refused(check_desc(&format!("{base}RW 2097152 FLAT \"disk-flat.vmdk\" 0\n")), "another file");
        assert_refused(
            check_desc(&format!("{base}RW 1048576 SPARSE \"a.vmdk\"\nRW 1048576 SPARSE \"b.vmdk\"\n")),
            "2 extents",
        );
        assert_refused(check_desc(&format!("{base}\n")), "0 extents");
        assert_refused(check_desc(&format!("{base}RW 2097152 SPARSE \"s.vmdk\"\nwhat is this\n")), "not understood");
        assert_refused(
            check_desc("version=1\ncreateType=\"vmfsSparse\"\nRW 2097152 SPARSE \"s.vmdk\"\n"),
            "createType \"vmfsSparse\"",
        );
        assert_refused(check_desc("version=1\nRW 2097152 SPARSE \"s.vmdk\"\n"), "no createType");
        assert_refused(check_desc("version=1\ncreateType=\"monolithicSparse\"\u{e9}\n"), "ASCII");

        // A header that does not point at an embedded descriptor.
        let mut head = img.head.clone();
        head[28..36].copy_from_slice(&0u64.to_le_bytes());
        assert_refused(check("vmdk", &head, &img.tail, img.size), "no embedded descriptor");
        // Unknown version and the legacy COWD format.
        let mut head = img.head.clone();
        head[4..8].copy_from_slice(&9u32.to_le_bytes());
        assert_refused(check("vmdk", &head, &img.tail, img.size), "unsupported version 9");
        assert_refused(Sample::bytes(b"COWD\x01\0\0\0").check("vmdk"), "COWD");
    }

    #[test]
    fn vmdk_footer_is_checked_when_the_grain_directory_is_at_the_end() {
        let s = Scratch::new("vmdkfooter");
        let img = s.create("vmdk", "so.vmdk", "1G", &["-o", "subformat=streamOptimized"]);
        // Build the VMware layout: header says "at the end", the last three sectors hold footer marker,
        // footer (a header copy with the real grain directory offset) and end-of-stream marker.
        let mut data = img.head.clone();
        let real_gd = le64(&data, 56).unwrap();
        data[56..64].copy_from_slice(&VMDK_GD_AT_END.to_le_bytes());
        let mut marker = vec![0u8; 512];
        marker[0..8].copy_from_slice(&1u64.to_le_bytes());
        marker[12..16].copy_from_slice(&VMDK_MARKER_FOOTER.to_le_bytes());
        let mut footer = data[..512].to_vec();
        footer[56..64].copy_from_slice(&real_gd.to_le_bytes());
        let build = |marker: &[u8], footer: &[u8], eos: &[u8]| {
            let mut d = data.clone();
            d.extend_from_slice(marker);
            d.extend_from_slice(footer);
            d.extend_from_slice(eos);
            Sample::bytes(&d)
        };
        let eos = vec![0u8; 512];
        assert_eq!(build(&marker, &footer, &eos).check("vmdk"), Ok(Some(GIB)));

        let mut bigger = footer.clone();
        bigger[12..20].copy_from_slice(&(4 * GIB / 512).to_le_bytes());
        assert_refused(build(&marker, &bigger, &eos).check("vmdk"), "footer");
        let mut again = footer.clone();
        again[56..64].copy_from_slice(&VMDK_GD_AT_END.to_le_bytes());
        assert_refused(build(&marker, &again, &eos).check("vmdk"), "footer");
        let mut bad_marker = marker.clone();
        bad_marker[12] = 2;
        assert_refused(build(&bad_marker, &footer, &eos).check("vmdk"), "footer");
        let mut bad_eos = eos.clone();
        bad_eos[100] = 1;
        assert_refused(build(&marker, &footer, &bad_eos).check("vmdk"), "footer");
        // A whole image whose last sectors are not a footer, or that is too short to hold one.
        assert_refused(check("vmdk", &data, &[], data.len() as u64), "invalid footer");
        assert_refused(check("vmdk", &data[..1024], &[], 1024), "too short to hold its footer");
        // An image larger than what is buffered: the footer is out of sight, and so is the virtual size.
        let big = build(&marker, &bigger, &eos);
        let size = 10 * (HEAD_BYTES as u64);
        assert_eq!(check("vmdk", &big.head, &big.tail, size), Ok(None));
    }

    #[test]
    fn vhd_fixed_and_dynamic() {
        let s = Scratch::new("vhd");
        for subformat in ["fixed", "dynamic"] {
            let name = format!("{subformat}.vhd");
            let img = s.create("vpc", &name, "1G", &["-o", &format!("subformat={subformat}")]);
            // qemu rounds the size to a CHS geometry; we must agree with what it will present to the guest.
            let expected = s.qemu_virtual_size("vpc", &name);
            assert!((GIB..GIB + (1 << 20)).contains(&expected), "{expected}");
            assert_eq!(img.inspect(), Inspection::new(Format::Vhd, Some(expected)), "{subformat}");
            assert_eq!(img.check("vhd"), Ok(Some(expected)));
            assert_refused(img.check("raw"), "it looks like vhd");
            assert_refused(img.check("vhdx"), "it looks like vhd");
        }
        // A fixed VHD is a raw disk plus a footer: its content does not matter, the footer does.
        let mut data = mbr_disk();
        let dynamic = Sample::read(&s.path("dynamic.vhd"));
        let mut footer = dynamic.head[..512].to_vec();
        footer[60..64].copy_from_slice(&2u32.to_be_bytes());
        data.extend_from_slice(&footer);
        assert_eq!(Sample::bytes(&data).inspect().format, Format::Vhd);

        // Differencing disks name their parent.
        let mut head = dynamic.head.clone();
        head[60..64].copy_from_slice(&4u32.to_be_bytes());
        assert_refused(check("vhd", &head, &dynamic.tail, dynamic.size), "differencing");
        head[60..64].copy_from_slice(&9u32.to_be_bytes());
        assert_refused(check("vhd", &head, &dynamic.tail, dynamic.size), "unknown disk type 9");
    }

    #[test]
    fn vhdx_and_vdi() {
        let s = Scratch::new("vhdx");
        let vhdx = s.create("vhdx", "h.vhdx", "1G", &[]);
        assert_eq!(vhdx.inspect(), Inspection::new(Format::Vhdx, Some(GIB)));
        assert_eq!(s.qemu_virtual_size("vhdx", "h.vhdx"), GIB);
        assert_eq!(vhdx.check("vhdx"), Ok(Some(GIB)));
        assert_refused(vhdx.check("raw"), "it looks like vhdx");

        // Metadata region beyond what was buffered: still vhdx, size unknown, accepted.
        let short = &vhdx.head[..1 << 20];
        assert_eq!(check("vhdx", short, &vhdx.tail, vhdx.size), Ok(None));
        assert_refused(check("raw", short, &vhdx.tail, vhdx.size), "it looks like vhdx");

        // A differencing VHDX: the "has parent" file parameter, or a parent locator item.
        let region = vhdx_metadata_region(&vhdx.head).unwrap();
        let entries: Vec<usize> =
            (0..usize::from(le16(&vhdx.head, region + 10).unwrap())).map(|i| region + 32 + 32 * i).collect();
        let params = *entries.iter().find(|e| vhdx.head[**e..**e + 16] == VHDX_FILE_PARAMETERS).unwrap();
        let item = region + le32(&vhdx.head, params + 16).unwrap() as usize;
        let mut head = vhdx.head.clone();
        head[item + 4] |= VHDX_HAS_PARENT as u8;
        assert_refused(check("vhdx", &head, &vhdx.tail, vhdx.size), "differencing");
        let mut head = vhdx.head.clone();
        let last = *entries.last().unwrap();
        head[last..last + 16].copy_from_slice(&VHDX_PARENT_LOCATOR);
        assert_refused(check("vhdx", &head, &vhdx.tail, vhdx.size), "differencing");

        let vdi = s.create("vdi", "v.vdi", "1G", &[]);
        assert_eq!(vdi.inspect(), Inspection::new(Format::Vdi, Some(GIB)));
        assert_eq!(s.qemu_virtual_size("vdi", "v.vdi"), GIB);
        assert_eq!(vdi.check("vdi"), Ok(Some(GIB)));
        assert_refused(vdi.check("raw"), "it looks like vdi");
        let mut head = vdi.head.clone();
        head[0x4C..0x50].copy_from_slice(&4u32.to_le_bytes());
        assert_refused(check("vdi", &head, &vdi.tail, vdi.size), "vdi image type 4");
    }

    #[test]
    fn random_bytes_are_raw() {
        let data = noise(256 * 1024, 0x5EED);
        let img = Sample::bytes(&data);
        assert_eq!(img.inspect(), Inspection::new(Format::Raw, Some(data.len() as u64)));
        assert_eq!(img.check("raw"), Ok(Some(data.len() as u64)));
        for declared in ["aki", "ari", "ami", "ploop"] {
            assert_eq!(img.check(declared), Ok(None), "{declared}");
        }
        for declared in ["qcow2", "vmdk", "vhd", "vhdx", "vdi", "iso", "gpt"] {
            assert_refused(img.check(declared), &format!("not in the declared format {declared} (it looks like raw)"));
        }
        // Empty and tiny uploads.
        assert_eq!(check("raw", &[], &[], 0), Ok(Some(0)));
        assert_refused(check("qcow2", &[], &[], 0), "it looks like raw");
        // Declared names are matched case-insensitively.
        assert_eq!(img.check("RAW"), Ok(Some(data.len() as u64)));
    }

    #[test]
    fn partitioned_raw_disks() {
        let disk = mbr_disk();
        let img = Sample::bytes(&disk);
        assert_eq!(img.inspect(), Inspection::new(Format::Gpt, Some(disk.len() as u64)));
        assert_eq!(img.check("raw"), Ok(Some(disk.len() as u64)));
        assert_eq!(img.check("gpt"), Ok(Some(disk.len() as u64)));
        assert_eq!(img.check("ami"), Ok(None));
        assert_refused(img.check("qcow2"), "it looks like gpt");

        // A GPT protective MBR.
        let mut gpt = vec![0u8; 64 * 1024];
        gpt[446 + 2] = 0x02;
        gpt[446 + 4] = 0xEE;
        gpt[446 + 8..446 + 12].copy_from_slice(&1u32.to_le_bytes());
        gpt[446 + 12..446 + 16].copy_from_slice(&u32::MAX.to_le_bytes());
        gpt[510..512].copy_from_slice(&[0x55, 0xAA]);
        gpt[512..520].copy_from_slice(b"EFI PART");
        assert_eq!(Sample::bytes(&gpt).check("gpt"), Ok(Some(gpt.len() as u64)));
        // A protective entry plus another partition is not a sane GPT: just raw.
        let mut hybrid = gpt.clone();
        hybrid[462 + 4] = 0x83;
        assert_eq!(Sample::bytes(&hybrid).inspect().format, Format::Raw);
        assert_refused(Sample::bytes(&hybrid).check("gpt"), "it looks like raw");

        // An invalid boot flag, or a FAT boot sector, is not a partition table.
        let mut bad = disk.clone();
        bad[446] = 0x12;
        assert_eq!(Sample::bytes(&bad).inspect().format, Format::Raw);
        let mut fat = disk.clone();
        fat[0x10] = 2;
        fat[0x15] = 0xF8;
        assert_eq!(Sample::bytes(&fat).inspect().format, Format::Raw);

        // A qcow2 header that also carries an MBR signature and partition is a polyglot.
        let mut both = qcow2_v3_header(GIB);
        both[446..512].copy_from_slice(&disk[446..512]);
        assert_refused(Sample::bytes(&both).check("qcow2"), "partitioned disk");
    }

    #[test]
    fn iso_images() {
        let iso = iso_image(1000);
        let img = Sample::bytes(&iso);
        assert_eq!(img.inspect(), Inspection::new(Format::Iso, Some(1000 * 2048)));
        assert_eq!(img.check("iso"), Ok(Some(1000 * 2048)));
        assert_eq!(img.check("raw"), Ok(Some(iso.len() as u64)));
        assert_refused(img.check("qcow2"), "it looks like iso");
        assert_refused(img.check("ami"), "it looks like iso");

        // Just the signature (no primary descriptor): an ISO of unknown size.
        let mut bare = vec![0u8; 40 * 1024];
        bare[0x8001..0x8006].copy_from_slice(b"CD001");
        assert_eq!(Sample::bytes(&bare).check("iso"), Ok(None));
        // UDF: BEA01, NSR02, TEA01.
        let mut udf = vec![0u8; 40 * 1024];
        for (i, id) in [b"BEA01", b"NSR02", b"TEA01"].iter().enumerate() {
            let at = ISO_FIRST_DESCRIPTOR + i * ISO_DESCRIPTOR_LEN + 1;
            udf[at..at + 5].copy_from_slice(*id);
        }
        assert_eq!(Sample::bytes(&udf).inspect().format, Format::Iso);

        // A hybrid ISO (bootable as a disk) carries an MBR: still an ISO.
        let mut hybrid = iso.clone();
        hybrid[446..512].copy_from_slice(&mbr_disk()[446..512]);
        assert_eq!(Sample::bytes(&hybrid).check("iso"), Ok(Some(1000 * 2048)));

        // The ISO + qcow2 polyglot Glance refuses, whatever it is declared as.
        let mut polyglot = iso.clone();
        polyglot[..104].copy_from_slice(&qcow2_v3_header(GIB)[..104]);
        let found = Sample::bytes(&polyglot).inspect();
        assert!(found.unsafe_reason.as_deref().is_some_and(|r| r.contains("ISO 9660")), "{found:?}");
        for declared in ["iso", "qcow2", "raw"] {
            assert_refused(Sample::bytes(&polyglot).check(declared), "qcow2 image and an ISO 9660 image");
        }
        // Same with a VMDK.
        let s = Scratch::new("isovmdk");
        let vmdk = s.create("vmdk", "s.vmdk", "1G", &[]);
        let mut polyglot = iso.clone();
        polyglot[..0x8000].copy_from_slice(&vmdk.head[..0x8000]);
        assert_refused(Sample::bytes(&polyglot).check("iso"), "vmdk image and an ISO 9660 image");
    }

    #[test]
    fn other_formats_and_polyglots() {
        let mut qed = vec![0u8; 4096];
        qed[..4].copy_from_slice(b"QED\0");
        assert_refused(Sample::bytes(&qed).check("raw"), "QED");

        let mut luks = vec![0u8; 8192];
        luks[..6].copy_from_slice(b"LUKS\xba\xbe");
        luks[6..8].copy_from_slice(&1u16.to_be_bytes());
        luks[104..108].copy_from_slice(&8u32.to_be_bytes());
        assert_eq!(Sample::bytes(&luks).inspect(), Inspection::new(Format::Luks, Some(4096)));
        assert_refused(Sample::bytes(&luks).check("raw"), "it looks like luks");
        luks[6..8].copy_from_slice(&2u16.to_be_bytes());
        assert_refused(Sample::bytes(&luks).check("raw"), "LUKS version 2");

        // qcow2 header with a VDI signature at 0x40 (inside the qcow2 L1 table offset).
        let mut both = qcow2_v3_header(GIB);
        both[0x40..0x44].copy_from_slice(&VDI_SIGNATURE.to_le_bytes());
        let found = Sample::bytes(&both).inspect();
        assert_eq!(
            found.unsafe_reason.as_deref(),
            Some("Image data matches several disk formats at once (qcow2, vdi); such files are not allowed")
        );
        assert_refused(Sample::bytes(&both).check("qcow2"), "several disk formats");
    }

    #[test]
    fn truncated_and_hostile_input_never_panics() {
        let s = Scratch::new("truncated");
        let mut samples = vec![
            s.create("qcow2", "a.qcow2", "1G", &[]).head,
            s.create("qcow2", "d.qcow2", "1G", &["-o", "data_file=x.raw"]).head,
            s.create("vmdk", "s.vmdk", "1G", &[]).head,
            s.create("vpc", "v.vhd", "1G", &[]).head,
            s.create("vhdx", "h.vhdx", "1G", &[]).head,
            s.create("vdi", "v.vdi", "1G", &[]).head,
            iso_image(10),
            mbr_disk(),
            b"# Disk DescriptorFile\nversion=1\ncreateType=\"monolithicSparse\"\n".to_vec(),
        ];
        // Headers full of 0xFF: every offset and count at its maximum.
        for magic in [&b"QFI\xfb"[..], b"KDMV", b"conectix", b"vhdxfile", b"LUKS\xba\xbe", b"COWD"] {
            let mut h = vec![0xFFu8; 300 * 1024];
            h[..magic.len()].copy_from_slice(magic);
            h[0x30000..0x30004].copy_from_slice(b"regi");
            samples.push(h);
        }
        let mut vdi = vec![0xFFu8; 1024];
        vdi[0x40..0x44].copy_from_slice(&VDI_SIGNATURE.to_le_bytes());
        samples.push(vdi);

        // Panics could only come from `inspect` (`check` adds no reads), so one inspection per cut and buffer
        // shape, plus a `check` or two, covers it.
        for sample in &samples {
            let mut cuts: Vec<usize> = (0..=600).chain((601..=1100).step_by(7)).collect();
            cuts.extend([4095, 4096, 0x8005, 0x8800, 0x30010, 0x30030, 0x300040, sample.len()]);
            for cut in cuts.into_iter().filter(|c| *c <= sample.len()) {
                let head = &sample[..cut];
                let tail = &head[cut.saturating_sub(TAIL_BYTES)..];
                let _ = inspect(head, tail, u64::MAX);
                let _ = inspect(head, &[], 0);
                let _ = check("raw", head, tail, cut as u64);
                let _ = check("ami", head, tail, cut as u64);
            }
        }
        // A truncated qcow2 header is refused, not read past its end.
        assert_refused(check("qcow2", b"QFI\xfb\0\0\0\x03", &[], 8), "truncated");
        assert_refused(check("raw", b"QFI\xfb", &[], 4), "truncated");
        assert_refused(check("vhd", b"conectix", &[], 8), "truncated");
    }
}
