#!/usr/bin/env bash
# Commit messages: a subject of at most 72 characters, the detail in the
# body. Checked for the commits after BASE (the history before the rule was
# written down is left as it is). Skipped where BASE is not in the clone.
set -euo pipefail
cd "$(dirname "$0")/.."
BASE=7000ecf
command -v git >/dev/null && git rev-parse -q --verify "$BASE^{commit}" >/dev/null 2>&1 || {
    echo "check-commits: $BASE not in this clone; skipped" >&2
    exit 0
}
bad=$(git log --format='%h %s' "$BASE..HEAD" | awk '{ s = $0; sub(/^[^ ]+ /, "", s); if (length(s) > 72) print }')
if [ -n "$bad" ]; then
    echo "commit subjects longer than 72 characters:" >&2
    echo "$bad" >&2
    exit 1
fi
