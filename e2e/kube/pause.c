/*
 * The pod sandbox the kubelet starts first in every pod: it holds the pod's namespaces,
 * reaps children orphaned into it, and exits when the kubelet stops the pod.
 */
#include <signal.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static void stop(int sig) {
	(void)sig;
	_exit(0);
}

static void reap(int sig) {
	(void)sig;
	while (waitpid(-1, NULL, WNOHANG) > 0) {
	}
}

static void on(int sig, void (*handler)(int), int flags) {
	struct sigaction action;
	memset(&action, 0, sizeof action);
	action.sa_handler = handler;
	action.sa_flags = flags;
	sigaction(sig, &action, NULL);
}

int main(void) {
	on(SIGTERM, stop, 0);
	on(SIGINT, stop, 0);
	on(SIGCHLD, reap, SA_NOCLDSTOP | SA_RESTART);
	for (;;)
		pause();
}
