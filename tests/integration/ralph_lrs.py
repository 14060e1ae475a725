"""Ralph's LRS as `ralph runserver --backend fs` serves it, run by Ralph's own venv's Python (test_xapi.py):

    python ralph_lrs.py <host> <port> <statements directory>

One change to Ralph: its filesystem LRS backend writes every batch of statements with the `create` operation into the
same file (fs_lrs.jsonl), so it refuses every write after the first with a 500 ("already exists and overwrite is not
allowed", ralph-malph 4.2 and 5.1, backends/data/fs.py). Here it appends instead, which is what an LRS does; the rest
(HTTP API, basic auth, statement validation and id conflicts, queries) is Ralph's. In one process, without
`runserver`'s reloader, so that the change holds in the process that serves.
"""

from __future__ import annotations

import os
import sys

import uvicorn
from ralph.backends.data.base import BaseOperationType
from ralph.backends.lrs.fs import FSLRSBackend

host, port, directory = sys.argv[1], int(sys.argv[2]), sys.argv[3]
os.environ.update({"RALPH_RUNSERVER_BACKEND": "fs", "RALPH_BACKENDS__LRS__FS__DEFAULT_DIRECTORY_PATH": directory})
FSLRSBackend.default_operation_type = BaseOperationType.APPEND
uvicorn.run("ralph.api:app", host=host, port=port, log_level="info")
