# session 25's plan, call 2 (carry [".fa4-lib"]): stage FA4's library in /tmp/fa4; call 3 must follow
# within ~30 s (the machine stays warm that long)
bash .fa4-lib/device.sh 2>&1 | tail -3
