#!/usr/bin/env bash
# Regenerate the initial Alembic migration from the tables in src/xinyong/store.py.
# Until the first release there is one migration; after it, add new revisions instead.
set -euo pipefail
cd "$(dirname "$0")/.."
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cat > "$tmp/alembic.ini" <<INI
[alembic]
script_location = $PWD/src/xinyong/migrations
sqlalchemy.url = sqlite:///$tmp/gen.db
INI
rm -f src/xinyong/migrations/versions/0001_*.py
.venv/bin/alembic -c "$tmp/alembic.ini" revision --autogenerate --rev-id 0001 -m "ledger, schemes, effects" >/dev/null
.venv/bin/ruff check --fix -q src/xinyong/migrations || true
.venv/bin/ruff format -q src/xinyong/migrations
echo "regenerated: $(ls src/xinyong/migrations/versions/0001_*.py)"
