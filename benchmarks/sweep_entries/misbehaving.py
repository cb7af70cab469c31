"""Three submissions an organiser meets: one that crashes, one that hangs, one that ends its
process with os._exit(0) in the middle of its forward. Each is the IMDN baseline otherwise."""

import os
import time

from esrprof.reference_models.imdn import IMDN


class Crashing(IMDN):
    def forward(self, x):
        raise RuntimeError("size mismatch in the upsampler (a submission's bug)")


class Hanging(IMDN):
    def forward(self, x):
        while True:  # waits forever for something that never comes
            time.sleep(1)


class Exiting(IMDN):
    def forward(self, x):
        os._exit(0)  # ends the whole process, reporting success
