#!/bin/sh
# An rsh agent for Open MPI (--mca plm_rsh_agent) that "logs in" to a host
# given by IP address by running the command in the network namespace that owns
# that address, so that one machine can stand in for several hosts joined by
# real (veth) links: tests/test_mpi.py::test_two_hosts_over_veth.
#
# mpirun calls it as `netns_rsh.sh HOST COMMAND...`, where COMMAND is written
# for a remote shell (quoted MCA values), as ssh would receive it; so it is
# re-parsed by sh -c here too. The environment is cleared as an ssh login would
# clear it: the remote daemon must get everything it needs from its command
# line and from mpirun, not from the launching shell by accident.
set -eu
host=$1
shift
ns=
for n in $(ip netns list | cut -d' ' -f1); do
    if ip -n "$n" -o -4 addr show | grep -q " inet $host/"; then
        ns=$n
        break
    fi
done
if [ -z "$ns" ]; then
    echo "netns_rsh.sh: no network namespace has address $host" >&2
    exit 255
fi
exec ip netns exec "$ns" env -i PATH="$PATH" HOME="${HOME:-/root}" sh -c "$*"
