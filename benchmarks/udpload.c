/*
 * udpload: a UDP load generator that keeps a window of datagrams in flight.
 *
 *   udpload PORT SECONDS [SIZE [WINDOW [TIMEOUT_MS]]]
 *
 * Sends SIZE-byte datagrams (default 64) to 127.0.0.1:PORT - and nowhere else - keeping
 * WINDOW of them (default 32) waiting for a reply, for SECONDS. Each reply lets one more
 * datagram go. When no reply arrives for TIMEOUT_MS (default 200), the datagrams in flight
 * are counted as lost and a new window goes out, so a server that drops datagrams or stops
 * answering never hangs the run. After SECONDS it waits up to TIMEOUT_MS for the last
 * replies, then prints one line:
 *
 *   sent=N received=N lost=N late=N errors=N elapsed=S rate=R
 *
 * rate is the replies received per second during the SECONDS of load. Exit status: 0; 2 when
 * the datagrams were refused and no reply came (nobody listening); 1 on a usage or system error.
 */
#define _POSIX_C_SOURCE 200809L

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_SIZE 65507
#define MAX_ERRORS 1000

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static long parse(const char *text, const char *name, long low, long high) {
    char *end = NULL;
    errno = 0;
    long value = strtol(text, &end, 10);
    if (errno != 0 || end == text || *end != '\0' || value < low || value > high) {
        fprintf(stderr, "udpload: %s must be an integer from %ld to %ld, not %s\n", name, low,
                high, text);
        exit(1);
    }
    return value;
}

struct counts {
    long sent, received, lost, late, errors, inflight;
};

/* Receive every reply waiting on the socket; returns how many arrived. */
static long drain(int fd, struct counts *c, char *buffer) {
    long got = 0;
    for (;;) {
        ssize_t n = recv(fd, buffer, MAX_SIZE, MSG_DONTWAIT);
        if (n >= 0) {
            got++;
            if (c->inflight > 0) {
                c->inflight--;
                c->received++;
            } else {
                c->late++; /* a reply to a datagram already counted as lost */
            }
            continue;
        }
        if (errno == EAGAIN || errno == EWOULDBLOCK) return got;
        if (errno == EINTR) continue;
        if (errno == ECONNREFUSED) {
            c->errors++;
            return got;
        }
        perror("udpload: recv");
        exit(1);
    }
}

int main(int argc, char **argv) {
    if (argc < 3 || argc > 6) {
        fprintf(stderr, "usage: udpload PORT SECONDS [SIZE [WINDOW [TIMEOUT_MS]]]\n");
        return 1;
    }
    long port = parse(argv[1], "PORT", 1, 65535);
    long seconds = parse(argv[2], "SECONDS", 1, 600);
    long size = argc > 3 ? parse(argv[3], "SIZE", 1, MAX_SIZE) : 64;
    long window = argc > 4 ? parse(argv[4], "WINDOW", 1, 4096) : 32;
    long timeout_ms = argc > 5 ? parse(argv[5], "TIMEOUT_MS", 1, 10000) : 200;

    int fd = socket(AF_INET, SOCK_DGRAM, 0);
    if (fd < 0) {
        perror("udpload: socket");
        return 1;
    }
    struct sockaddr_in address;
    memset(&address, 0, sizeof address);
    address.sin_family = AF_INET;
    address.sin_port = htons((unsigned short)port);
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    /* Connected: replies from anyone but the server are dropped by the kernel. */
    if (connect(fd, (struct sockaddr *)&address, sizeof address) != 0) {
        perror("udpload: connect");
        return 1;
    }

    static char payload[MAX_SIZE];
    static char buffer[MAX_SIZE];
    memset(payload, 'x', (size_t)size);
    struct counts c = {0, 0, 0, 0, 0, 0};
    struct pollfd waiting = {.fd = fd, .events = POLLIN, .revents = 0};

    double start = now();
    double stop = start + (double)seconds;
    double last_reply = start;
    double t = start;
    while (t < stop && c.errors < MAX_ERRORS) {
        while (c.inflight < window) {
            ssize_t n = send(fd, payload, (size_t)size, MSG_DONTWAIT);
            if (n >= 0) {
                c.sent++;
                c.inflight++;
                continue;
            }
            if (errno == ECONNREFUSED) {
                c.errors++;
                break;
            }
            if (errno == EAGAIN || errno == EWOULDBLOCK || errno == ENOBUFS || errno == EINTR) {
                break;
            }
            perror("udpload: send");
            return 1;
        }
        double left_ms = (stop - t) * 1000.0;
        int wait_ms = (int)(left_ms < (double)timeout_ms ? left_ms : (double)timeout_ms);
        int ready = poll(&waiting, 1, wait_ms > 0 ? wait_ms : 0);
        if (ready < 0 && errno != EINTR) {
            perror("udpload: poll");
            return 1;
        }
        t = now();
        if (ready > 0 && drain(fd, &c, buffer) > 0) {
            last_reply = t;
        } else if ((t - last_reply) * 1000.0 >= (double)timeout_ms) {
            c.lost += c.inflight; /* nothing came back in time: give up on the window */
            c.inflight = 0;
            last_reply = t;
        }
    }
    double elapsed = t - start;
    long received_in_time = c.received;

    double give_up = now() + (double)timeout_ms / 1000.0;
    while (c.inflight > 0 && c.errors < MAX_ERRORS) {
        double left_ms = (give_up - now()) * 1000.0;
        if (left_ms <= 0) break;
        if (poll(&waiting, 1, (int)left_ms + 1) > 0) drain(fd, &c, buffer);
    }
    c.lost += c.inflight;
    close(fd);

    printf("sent=%ld received=%ld lost=%ld late=%ld errors=%ld elapsed=%.6f rate=%.1f\n", c.sent,
           c.received, c.lost, c.late, c.errors, elapsed,
           elapsed > 0 ? (double)received_in_time / elapsed : 0.0);
    return c.errors > 0 && c.received == 0 ? 2 : 0;
}
