//! QEMU driver tests against the real qemu-system-x86_64 and qemu-img,
//! with one-sector guests under TCG (KVM here hangs ordinary guests).
