-- A container's standard streams as JSON:
-- {"tty": bool, "open_stdin": bool, "stdin_once": bool}.
-- NULL: none of them (stdin is /dev/null, output goes to pipes).
ALTER TABLE containers ADD COLUMN stdio TEXT;
