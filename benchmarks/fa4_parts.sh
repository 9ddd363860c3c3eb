#!/usr/bin/env bash
# FA4's library (.fa4-lib/cu13.tar.xz, ~63.5 MB, made by ../shared/anchors-fa4/prepare.sh) in two
# halves, for when the checkout plus .fa4-lib passes the 64 MiB a device call may carry.
#   here (CPU):       bash benchmarks/fa4_parts.sh split    -> .fa4-lib-a/, .fa4-lib-b/ (git-ignored)
#   on the GPU, two calls back to back (the machine keeps /tmp only while warm):
#     carry [".fa4-lib-a"]: bash benchmarks/fa4_parts.sh stage
#     carry [".fa4-lib-b"]: bash benchmarks/fa4_parts.sh stage  -> /tmp/fa4/cu13.tar.xz, as .fa4-lib/device.sh leaves it
#   then carry [".fa4-py"] and `source .fa4-py/device.sh` as usual.
# FA4_STAGE_DIR overrides /tmp/fa4 (tests).
set -euo pipefail
stage_dir=${FA4_STAGE_DIR:-/tmp/fa4}
case "${1:-}" in
  split)
    lib=.fa4-lib/cu13.tar.xz
    [ -f "$lib" ] || { echo "fa4_parts: $lib not found: run ../shared/anchors-fa4/prepare.sh first" >&2; exit 1; }
    rm -rf .fa4-lib-a .fa4-lib-b
    mkdir -p .fa4-lib-a .fa4-lib-b
    half=$(( ($(stat -c %s "$lib") + 1) / 2 ))
    head -c "$half" "$lib" > .fa4-lib-a/part
    tail -c +"$((half + 1))" "$lib" > .fa4-lib-b/part
    sha256sum < "$lib" | cut -d' ' -f1 | tee .fa4-lib-a/sha256 > .fa4-lib-b/sha256
    exclude=$(git rev-parse --git-path info/exclude 2>/dev/null || true)
    if [ -n "$exclude" ]; then
      for p in .fa4-lib-a/ .fa4-lib-b/; do grep -qxF "$p" "$exclude" 2>/dev/null || echo "$p" >> "$exclude"; done
    fi
    echo "fa4_parts: .fa4-lib-a/ and .fa4-lib-b/ ready ($half bytes each at most)"
    ;;
  stage)
    mkdir -p "$stage_dir/parts"
    for p in a b; do
      if [ -f ".fa4-lib-$p/part" ]; then cp ".fa4-lib-$p/part" "$stage_dir/parts/$p"; cp ".fa4-lib-$p/sha256" "$stage_dir/parts/sha256"; fi
    done
    if [ -f "$stage_dir/parts/a" ] && [ -f "$stage_dir/parts/b" ]; then
      cat "$stage_dir/parts/a" "$stage_dir/parts/b" > "$stage_dir/cu13.tar.xz"
      if [ "$(sha256sum < "$stage_dir/cu13.tar.xz" | cut -d' ' -f1)" != "$(cat "$stage_dir/parts/sha256")" ]; then
        rm -f "$stage_dir/cu13.tar.xz"; echo "fa4_parts: the joined library does not match its checksum" >&2; exit 1
      fi
      rm -rf "$stage_dir/parts"
      echo "fa4: library staged in $stage_dir"
    else
      echo "fa4_parts: one half staged in $stage_dir/parts; stage the other next (the machine must stay warm)"
    fi
    ;;
  *)
    echo "usage: bash benchmarks/fa4_parts.sh split|stage" >&2; exit 2
    ;;
esac
