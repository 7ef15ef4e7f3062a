//! Linux: `/proc`.

/// Field 22 of `/proc/<pid>/stat`: clock ticks after boot.
pub fn process_start_time(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may contain spaces; it ends at the last ')'.
    let rest = stat.get(stat.rfind(')')? + 2..)?;
    rest.split_whitespace().nth(19)?.parse().ok()
}

pub fn hostname() -> Option<String> {
    std::fs::read_to_string("/proc/sys/kernel/hostname").ok()
}

/// Acknowledges what the socket received at once instead of after the
/// kernel's delayed-ACK timer (up to 40 ms). Linux leaves quick-ACK mode
/// on its own, so this is asked again after every read.
pub fn quick_ack(fd: std::os::fd::RawFd) {
    let one: libc::c_int = 1;
    #[allow(unsafe_code)]
    // SAFETY: setsockopt(2) reads `size_of::<c_int>()` bytes from a live
    // local; a bad fd only makes it fail, which changes nothing here.
    unsafe {
        libc::setsockopt(
            fd,
            libc::IPPROTO_TCP,
            libc::TCP_QUICKACK,
            std::ptr::addr_of!(one).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        );
    }
}
