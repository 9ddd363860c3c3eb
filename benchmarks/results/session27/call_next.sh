# for the next session's first device call (no carry), on branch s27-l2-sections: the GPU tests the change
# touches, then the A/B of the item order in L2-sized sections (forward counter, backward one program per
# key tile). Merge into main if the tests pass and the A/B pays (predictions: ab_sections.py's docstring).
export PYTHONPATH=.
timeout 280 python -m pytest -q -m gpu -p no:cacheprovider tests/kernels/test_flash_fwd_sm90.py tests/kernels/test_flash_bwd_sm90.py \
  -k "sections or persistent or families or lengths or strided or nan" > $OUT/gpu_tests_sections.log 2>&1
tail -4 $OUT/gpu_tests_sections.log
timeout 260 python benchmarks/results/session27/ab_sections.py 2>&1 | grep -v Warn | tee $OUT/ab_sections.log
