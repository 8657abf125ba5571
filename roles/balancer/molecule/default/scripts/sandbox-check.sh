#!/usr/bin/env bash
# From inside the running unit's mount namespace, as its user: the state
# directory is writable, /etc and /opt are not; a rewrite of renderfarm.conf
# (the balancer's own code) fires the path unit, which reloads Apache
# gracefully. Usage: sandbox-check.sh VENV
set -euo pipefail
venv=$1
unit=gbrowse-aws-balancer.service
state=/var/lib/gbrowse-aws-balancer
fail() { echo "FAIL: $*" >&2; exit 1; }

pid=$(systemctl show "$unit" -p MainPID --value)
[ "$pid" -gt 0 ] || fail "$unit has no main process"
uid=$(stat -c %u "/proc/$pid")
gid=$(stat -c %g "/proc/$pid")
[ "$(id -un "$uid")" = gbrowse-aws ] || fail "runs as $(id -un "$uid")"
environ=$(tr '\0' '\n' <"/proc/$pid/environ")
grep -q '^EC2_SECRET_KEY=' <<<"$environ" || fail "no credentials in its environment"
echo "ok: runs as gbrowse-aws, credentials in its environment (EnvironmentFile), not its command line"
as_balancer() { nsenter --target "$pid" --mount --setuid "$uid" --setgid "$gid" -- "$@"; }

as_balancer sh -c "echo probe > $state/.probe && rm $state/.probe" || fail "$state is not writable for the balancer"
for dir in /etc/gbrowse2 /opt/gbrowse-aws-balancer /usr/local/bin /var/log; do
    if as_balancer sh -c "echo x > $dir/.probe" 2>/dev/null; then fail "$dir is writable for the balancer"; fi
done
echo "ok: sandbox writable only in $state"
[ "$(readlink /etc/gbrowse2/renderfarm.conf)" = "$state/renderfarm.conf" ] || fail "renderfarm.conf is not the link"

reloads() { journalctl -u apache2.service --no-pager -o cat | grep -c '^Reloaded' || true; }
started() { systemctl show gbrowse-aws-renderfarm.service -p ExecMainStartTimestampMonotonic --value; }
write_farm() {
    as_balancer "$venv/bin/python" -I -c '
import sys
from ansible_collections.gmod.gbrowse_aws.plugins.module_utils._renderfarm import write_renderfarm
write_renderfarm(sys.argv[1], sys.argv[2:])' "$state/renderfarm.conf" "$@"
}
before=$(started)
reloads_before=$(reloads)
apache_pid=$(systemctl show apache2.service -p MainPID --value)
write_farm http://127.100.1.9:8101
grep -q 'http://127.100.1.9:8101' /etc/gbrowse2/renderfarm.conf || fail "GBrowse does not see the new farm"
for _ in $(seq 100); do
    [ "$(started)" != "$before" ] && [ "$(reloads)" -gt "$reloads_before" ] && break
    sleep 0.1
done
[ "$(started)" != "$before" ] || fail "the path unit did not fire"
[ "$(reloads)" -gt "$reloads_before" ] || fail "Apache was not reloaded"
[ "$(systemctl show gbrowse-aws-renderfarm.service -p Result --value)" = success ] || fail "reload unit failed"
[ "$(systemctl show apache2.service -p MainPID --value)" = "$apache_pid" ] || fail "Apache was restarted, not reloaded"
echo "ok: renderfarm.conf rewritten as the balancer user, Apache reloaded gracefully (pid $apache_pid)"

# The balancer owns the list: at its next poll it writes its own farm (empty
# here) back, from its sandbox, and the path unit reloads Apache once more.
reloads_mid=$(reloads)
for _ in $(seq 100); do
    ! grep -q 'http://127.100.1.9:8101' /etc/gbrowse2/renderfarm.conf && [ "$(reloads)" -gt "$reloads_mid" ] && break
    sleep 0.1
done
! grep -q 'http://127.100.1.9:8101' /etc/gbrowse2/renderfarm.conf || fail "the balancer did not restore its farm"
[ "$(reloads)" -gt "$reloads_mid" ] || fail "Apache was not reloaded after the balancer's own write"
[ "$(stat -c %U "$state/renderfarm.conf")" = gbrowse-aws ] || fail "renderfarm.conf changed owner"
echo "ok: the balancer rewrote renderfarm.conf itself and Apache reloaded"
