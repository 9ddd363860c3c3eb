# The next session's first call, if one call must do most (carry [".ab", ".fa4-lib-a"], ~560 s).
# Before it, here: `git apply benchmarks/results/session35/wide_packed_untested.diff` and
# `bash benchmarks/results/session35/make_ab.sh` (.ab/maskattn_main = main without the wide items).
# It stages FA4's half a, runs call_wide.sh (the wide items' GPU tests, tree_rows main / wide), then
# session 34's call2.sh (ncu of tree verification, on the working tree's kernel). Right after, warm:
# session35/bench.sh with carry [".fa4-lib-b", ".fa4-py"] (PKG=main if the wide items failed: the
# benchmark does not reach them either way).
bash benchmarks/fa4_parts.sh stage
CAP_T=${CAP_T:-200} bash benchmarks/results/session35/call_wide.sh
timeout 230 bash benchmarks/results/session34/call2.sh
