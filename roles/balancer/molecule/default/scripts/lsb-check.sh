#!/usr/bin/env bash
# The init script run natively (SYSTEMCTL_SKIP_REDIRECT=1: no detour through
# systemctl): actions and LSB exit codes.
set -uo pipefail
export SYSTEMCTL_SKIP_REDIRECT=1
s=/etc/init.d/gbrowse-aws-balancer
pidfile=/run/gbrowse2/gbrowse-aws-balancer.pid
log=/var/log/gbrowse2/gbrowse_aws_balancer.log
out=$(mktemp)
trap 'rm -f "$out"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
expect() {
    local want=$1 got
    shift
    "$@" >"$out" 2>&1
    got=$?
    [ "$got" = "$want" ] || fail "$* exited $got, want $want: $(cat "$out")"
    echo "ok: $* -> $got"
}
as_nobody() { runuser -u nobody -- env SYSTEMCTL_SKIP_REDIRECT=1 "$@"; }

expect 0 $s stop
expect 3 $s status
expect 0 $s stop                          # stopping a stopped service succeeds
expect 0 $s start
expect 0 $s status
pid=$(cat $pidfile)
[ "$(stat -c %U "/proc/$pid")" = gbrowse-aws ] || fail "runs as $(stat -c %U "/proc/$pid")"
environ=$(tr '\0' '\n' <"/proc/$pid/environ")
grep -q '^EC2_SECRET_KEY=' <<<"$environ" || fail "no credentials in its environment"
echo "ok: runs as gbrowse-aws, credentials in its environment"
expect 0 as_nobody $s status              # status works for any user
expect 0 $s start                         # already running
[ "$(cat $pidfile)" = "$pid" ] || fail "a second start started another balancer"
expect 0 $s reload
for _ in $(seq 30); do grep -q 'Reloaded ' $log && break; sleep 0.1; done
grep -q 'Reloaded ' $log || fail "no reload in $log"
[ -d "/proc/$pid" ] || fail "reload stopped it"
kill -KILL "$pid"
sleep 0.5
expect 1 $s status                        # dead, pid file left behind
expect 0 $s start                         # over the stale pid file
newpid=$(cat $pidfile)
[ "$newpid" != "$pid" ] || fail "same pid after start"
expect 0 $s restart
[ "$(cat $pidfile)" != "$newpid" ] || fail "restart kept the pid"
expect 0 $s stop
[ ! -e $pidfile ] || fail "pid file left after stop"
expect 3 $s status
expect 3 $s bogus
expect 4 as_nobody $s start               # not root
expect 0 $s start                         # leave it running
grep -Eq '^\[[0-9]{2}/[A-Z][a-z]{2}/[0-9]{4}:[0-9:]{8} [+-][0-9]{4}\] ' $log || fail "no time-stamped lines in $log"
echo "ok: $log has the original's time stamps"
