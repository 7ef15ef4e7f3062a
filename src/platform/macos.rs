//! macOS: `proc_pidinfo(PROC_PIDTBSDINFO)` and `gethostname`. Not built
//! in this project's CI (no macOS target there); kept to two calls whose
//! signatures come from libc's `unix/bsd/apple` bindings.

/// `pbi_start_tvsec`/`pbi_start_tvusec` of the process, as microseconds
/// since the epoch.
pub fn process_start_time(pid: u32) -> Option<u64> {
    let pid = libc::c_int::try_from(pid).ok()?;
    let info = bsd_info(pid)?;
    Some(
        info.pbi_start_tvsec
            .saturating_mul(1_000_000)
            .saturating_add(info.pbi_start_tvusec),
    )
}

#[allow(unsafe_code)]
fn bsd_info(pid: libc::c_int) -> Option<libc::proc_bsdinfo> {
    let size = libc::c_int::try_from(std::mem::size_of::<libc::proc_bsdinfo>()).ok()?;
    // SAFETY: proc_bsdinfo is plain old data (integers and char arrays),
    // so all zeroes is a valid value; proc_pidinfo writes at most `size`
    // bytes into the buffer we own and returns how many it wrote.
    let mut info: libc::proc_bsdinfo = unsafe { std::mem::zeroed() };
    let written = unsafe {
        libc::proc_pidinfo(
            pid,
            libc::PROC_PIDTBSDINFO,
            0,
            (&mut info as *mut libc::proc_bsdinfo).cast::<libc::c_void>(),
            size,
        )
    };
    // Anything short of the whole struct is no answer (no such process,
    // or one we may not look at).
    (written == size).then_some(info)
}

#[allow(unsafe_code)]
pub fn hostname() -> Option<String> {
    let mut buf = [0u8; 256];
    // SAFETY: gethostname writes at most `buf.len()` bytes into the
    // buffer we own; the last byte is kept for the terminating NUL.
    let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast::<libc::c_char>(), buf.len() - 1) };
    if rc != 0 {
        return None;
    }
    let end = buf.iter().position(|b| *b == 0).unwrap_or(buf.len());
    Some(String::from_utf8_lossy(&buf[..end]).into_owned())
}

/// macOS has no per-socket quick-ACK switch; the relay's `TCP_NODELAY`
/// alone removes the client side's share of the stalls there.
pub fn quick_ack(_fd: std::os::fd::RawFd) {}
