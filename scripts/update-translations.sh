#!/usr/bin/env bash
# Extract the messages of notices and reports, merge them into the zh_Hans and en catalogues, and
# compile them. Run after changing a translatable string, then translate the new zh_Hans entries
# (tests/test_i18n.py names any left untranslated) and run it again to compile.
#
# The compiled .mo files are committed: an installed package (or a wheel) then needs no build step,
# and the test suite checks that each .mo says exactly what its .po says.
set -euo pipefail
cd "$(dirname "$0")/.."
PYBABEL=.venv/bin/pybabel
LOCALE=src/xinyong/locale
POT="$LOCALE/xinyong.pot"
mkdir -p "$LOCALE"
"$PYBABEL" extract -F babel.cfg -k N_ -k t --no-location --sort-output \
  --project xinyong --copyright-holder "xinyong contributors" --omit-header -o "$POT" src/xinyong
for lang in zh_Hans en; do
  po="$LOCALE/$lang/LC_MESSAGES/xinyong.po"
  if [[ -f "$po" ]]; then
    "$PYBABEL" update -i "$POT" -d "$LOCALE" -D xinyong -l "$lang" --no-fuzzy-matching --ignore-obsolete
  else
    "$PYBABEL" init -i "$POT" -d "$LOCALE" -D xinyong -l "$lang"
  fi
done
# English is the source language: its translations are the messages themselves.
.venv/bin/python - "$LOCALE/en/LC_MESSAGES/xinyong.po" <<'PY'
import sys
from babel.messages.pofile import read_po, write_po
path = sys.argv[1]
with open(path, "rb") as f:
    catalog = read_po(f, locale="en")
catalog.fuzzy = False
for message in catalog:
    plural = not isinstance(message.string, str)
    if message.id and not (any(message.string) if plural else message.string):
        message.string = message.id
with open(path, "wb") as f:
    write_po(f, catalog, omit_header=False, sort_output=True, include_previous=False, width=100)
PY
"$PYBABEL" compile -d "$LOCALE" -D xinyong --statistics
