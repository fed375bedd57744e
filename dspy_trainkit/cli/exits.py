"""Exit statuses shared by the commands, so a script can tell "some records rejected" from "some work could not
be done" from an error (docs/cli.md, "Exit status and errors")."""

EXIT_ERROR = 1  # an error the user can fix; one `Error: ...` line (main.py)
EXIT_USAGE = 2  # click's usage errors
EXIT_REJECTED = 3  # the work was done, but some records were rejected
EXIT_NOT_READY = 3  # `trainkit ready`: a task lacks data for its optimizer (a check that failed, like a rejection)
EXIT_DEGRADED = 3  # `trainkit doctor`: warnings only (1 when something is broken)
EXIT_PENDING = 3  # `trainkit migrate --check`: migrations are pending
EXIT_INCOMPLETE = 4  # some of the asked-for examples could not be made (LM failures); a re-run tries again
EXIT_ALERTED = 4  # `trainkit alerts check`: a new alert was raised (cron notices a non-zero exit)
EXIT_INTERRUPTED = 130  # Ctrl-C: what was finished is kept
