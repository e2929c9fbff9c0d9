"""A real PostgreSQL server for the tests: Debian's `postgresql` package, a
fresh cluster made by `initdb` in a temporary directory, listening on
127.0.0.1 and a free port only (no Unix socket), trust authentication.

PostgreSQL refuses to run as root, so as root the server runs as the
`postgres` user of the Debian package (through runuser) and the temporary
directory is given to it; as any other user it runs as that user.

    with PgServer() as pg:
        pg.dsn            # postgresql://fastformerd@127.0.0.1:PORT/fastformerd
        pg.stop()         # fast shutdown (pg.stop("immediate") for a crash)
        pg.start()        # same data directory, same port
        pg.sql("SELECT 1")

Standard library only; the server's own tools (initdb, pg_ctl, psql) do the work."""
import glob
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile

DEBIAN_HINT = "PostgreSQL server binaries not found (Debian: apt-get install postgresql)"


def server_bin_dir():
    """The bin directory of the newest PostgreSQL server installed, or None."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"),
                   key=lambda p: int(p.split("/")[4]) if p.split("/")[4].isdigit() else 0)
    return os.path.dirname(found[-1]) if found else None


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class PgServer:
    def __init__(self, user="fastformerd", database="fastformerd"):
        self.bin = server_bin_dir()
        if self.bin is None:
            raise RuntimeError(DEBIAN_HINT)
        self.user = user
        self.database = database
        self.port = free_port()
        # As root, under /tmp itself: the postgres user must be able to reach
        # the directory, which a TMPDIR under /root would not let it.
        self.root = tempfile.mkdtemp(prefix="fastformerd-pg-",
                                     dir="/tmp" if os.geteuid() == 0 else None)
        self.data = os.path.join(self.root, "data")
        self.log_path = os.path.join(self.root, "server.log")
        self.as_user = []
        if os.geteuid() == 0:
            pw = pwd.getpwnam("postgres")  # made by Debian's postgresql-common
            os.chown(self.root, pw.pw_uid, pw.pw_gid)
            self.as_user = ["runuser", "-u", "postgres", "--"]
        self.running = False

    @property
    def dsn(self):
        return f"postgresql://{self.user}@127.0.0.1:{self.port}/{self.database}"

    def _run(self, *argv, check=True, timeout=120):
        r = subprocess.run([*self.as_user, *argv], capture_output=True, text=True, timeout=timeout,
                           cwd=self.root)
        if check and r.returncode != 0:
            raise RuntimeError(f"{' '.join(argv)} failed ({r.returncode}):\n{r.stdout}{r.stderr}"
                               f"\n{self.server_log()[-3000:]}")
        return r

    def server_log(self):
        try:
            with open(self.log_path, errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def init(self):
        self._run(os.path.join(self.bin, "initdb"), "-D", self.data, "-U", "postgres",
                  "--auth=trust", "--encoding=UTF8", "--locale=C", "--no-sync")
        with open(os.path.join(self.data, "postgresql.conf"), "a") as f:
            f.write("listen_addresses = '127.0.0.1'\n"
                    f"port = {self.port}\n"
                    "unix_socket_directories = ''\n"
                    "fsync = on\n"
                    "max_connections = 40\n")
        self.start()
        self.sql(f"CREATE ROLE {self.user} LOGIN", database="postgres", user="postgres")
        self.sql(f"CREATE DATABASE {self.database} OWNER {self.user}", database="postgres",
                 user="postgres")
        return self

    def start(self):
        self._run(os.path.join(self.bin, "pg_ctl"), "-D", self.data, "-l", self.log_path, "-w",
                  "-t", "60", "start")
        self.running = True

    def stop(self, mode="fast"):
        """Stops the server: "fast" (clients are disconnected, a clean
        shutdown) or "immediate" (as a crash: recovery at the next start)."""
        self._run(os.path.join(self.bin, "pg_ctl"), "-D", self.data, "-m", mode, "-w", "-t", "60",
                  "stop")
        self.running = False

    def sql(self, query, database=None, user=None):
        """Runs one statement with psql; returns its unaligned, tuples-only
        output (fields separated by '|')."""
        r = subprocess.run(["psql", "-X", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-h", "127.0.0.1",
                            "-p", str(self.port), "-U", user or self.user, "-d",
                            database or self.database, "-c", query],
                           capture_output=True, text=True, timeout=60)
        if r.returncode != 0:
            raise RuntimeError(f"psql {query!r} failed: {r.stderr}")
        return r.stdout.strip()

    def postmaster_pids(self):
        """The postmaster's pid and its children's (processes of this server only)."""
        try:
            with open(os.path.join(self.data, "postmaster.pid")) as f:
                master = int(f.readline())
        except (OSError, ValueError):
            return []
        pids = [master]
        for name in os.listdir("/proc"):
            if not name.isdigit():
                continue
            try:
                with open(f"/proc/{name}/stat") as f:
                    ppid = int(f.read().rsplit(")", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                continue
            if ppid == master:
                pids.append(int(name))
        return pids

    def close(self):
        # A test that stopped the server's processes (SIGSTOP) and failed
        # before continuing them must not leave them stopped.
        for pid in self.postmaster_pids():
            try:
                os.kill(pid, signal.SIGCONT)
            except OSError:
                pass
        if self.running:
            try:
                self.stop("immediate")
            except RuntimeError:
                pass
        shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self):
        try:
            return self.init()
        except BaseException:
            self.close()
            raise

    def __exit__(self, *exc):
        self.close()


def main(argv):
    """`pgserver.py run CMD [ARG...]`: runs CMD with a fresh server, told by
    FASTFORMERD_TEST_PG_DSN (its DSN), FASTFORMERD_TEST_PG_DATA (its data
    directory) and FASTFORMERD_TEST_PG_CTL (a shell command prefix for
    pg_ctl: append "stop -m fast" or "start"); exits with CMD's status. The C unit tests re-run themselves through it."""
    import shlex
    import sys
    if len(argv) < 3 or argv[1] != "run":
        print("usage: pgserver.py run CMD [ARG...]", file=sys.stderr)
        return 2
    with PgServer() as pg:
        ctl = [*pg.as_user, os.path.join(pg.bin, "pg_ctl"), "-D", pg.data, "-l", pg.log_path,
               "-w", "-t", "60"]
        env = dict(os.environ, FASTFORMERD_TEST_PG_DSN=pg.dsn, FASTFORMERD_TEST_PG_DATA=pg.data,
                   FASTFORMERD_TEST_PG_CTL=" ".join(shlex.quote(a) for a in ctl))
        r = subprocess.run(argv[2:], env=env)
        pg.running = os.path.exists(os.path.join(pg.data, "postmaster.pid"))
        return r.returncode


if __name__ == "__main__":
    import sys
    sys.exit(main(sys.argv))
