#!/usr/bin/env bash
# systemctl reload (SIGHUP): the balancer re-reads its conf, same process.
set -euo pipefail
unit=gbrowse-aws-balancer.service
pid=$(systemctl show "$unit" -p MainPID --value)
reloads() { journalctl -u "$unit" --no-pager -o cat | grep -c 'Reloaded ' || true; }
before=$(reloads)
systemctl reload "$unit"
for _ in $(seq 50); do
    [ "$(reloads)" -gt "$before" ] && break
    sleep 0.1
done
[ "$(reloads)" -gt "$before" ] || { echo "FAIL: no reload logged" >&2; exit 1; }
[ "$(systemctl show "$unit" -p MainPID --value)" = "$pid" ] || { echo "FAIL: restarted instead" >&2; exit 1; }
echo "ok: SIGHUP re-read the conf in pid $pid"
