# Waiting in the shell tests: every wait retries its condition until a deadline generous
# for a loaded 2-core CI machine, and a wait that runs out fails. Sourced by
# tests/with-broker.sh, tests/java/*.sh and tests/kcat/kcat.sh.

# eventually SECONDS COMMAND...: runs COMMAND every half second until it succeeds (what
# it prints then is its output); fails once SECONDS have passed.
eventually() {
    local deadline=$((SECONDS + $1))
    shift
    until "$@"; do
        ((SECONDS < deadline)) || return 1
        sleep 0.5
    done
}

# listening HOST PORT: something accepts connections on HOST:PORT.
listening() { (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null; }
