#!/bin/sh
# Make the cluster on the first start (an empty data volume), then run
# PostgreSQL as the postgres user, as PID of the container's main process.
set -eu
mkdir -p "$PGDATA" /var/run/postgresql
chown postgres:postgres "$PGDATA" /var/run/postgresql
chmod 700 "$PGDATA"
as_postgres="setpriv --reuid=postgres --regid=postgres --init-groups"
if [ ! -s "$PGDATA/PG_VERSION" ]; then
  $as_postgres initdb -D "$PGDATA" -U postgres --auth=trust >/dev/null
  echo "listen_addresses = '*'" >> "$PGDATA/postgresql.conf"
  echo "host all all 0.0.0.0/0 trust" >> "$PGDATA/pg_hba.conf"
fi
exec $as_postgres postgres -D "$PGDATA"
