#!/usr/bin/env bash
# Builds .ab/ (git-excluded) for session 35's calls: maskattn_main = this checkout's main,
# maskattn_nt = the working tree's maskattn/ when NT=1 (the re-written where_words).
set -euo pipefail
rm -rf .ab && mkdir -p .ab
git archive main maskattn | tar -x -C .ab && mv .ab/maskattn .ab/maskattn_main
if [ "${NT:-0}" = 1 ]; then
  cp -r maskattn .ab/maskattn_nt && find .ab/maskattn_nt -name __pycache__ -prune -exec rm -rf {} +
fi
grep -qxF ".ab/" .git/info/exclude || echo ".ab/" >> .git/info/exclude
ls .ab; du -sh .ab
