bash .fa4-lib/device.sh
