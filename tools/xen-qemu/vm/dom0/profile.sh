# xen-qemu dom0: interactive shell settings (sourced by /etc/profile).
export PATH="$PATH:/usr/lib/xen-4.17/bin"
PS1='dom0# '
stty sane 2>/dev/null
