#!/bin/sh
# Prints the greeting the image was built with.
cat /srv/app/greeting.txt
