/*
 * cwload.h - the SIP + RTP load generator's shared declarations.
 *
 * cwload has three parts: the SIP side (sip.c: sofia-sip nua on the main
 * thread, which places, answers, registers and times every call), a lean RTP
 * engine (rtp.c: one UDP socket a call, driven by one or more threads on a
 * 20 ms tick, which sends G.711 tones and RFC 4733 digits and measures what
 * it receives), and the report (report.c). The options (main.c) fill one
 * struct load_opts that nobody changes once the run has started.
 *
 * Everything is measured at the peer: cwload never looks inside the
 * platform it loads.
 */
#ifndef CWLOAD_H
#define CWLOAD_H

#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ------------------------------------------------------------ options */

enum scenario { SC_REGISTER, SC_IVR, SC_QUEUE, SC_BRIDGE };

/* A set of numbered SIP users: login, password and extension patterns in
 * which "%d" stands for the number, numbers first..last. */
struct user_set {
    char login[64], pass[64], ext[32];
    int first, last;
};

enum dist_kind { DIST_FIXED, DIST_UNIFORM, DIST_EXP, DIST_NORMAL };

struct dist {
    enum dist_kind kind;
    double a, b; /* fixed: a; uniform: a..b; exp: mean a, cap b; normal: mean a, sd b */
};

struct load_opts {
    enum scenario sc;
    char server_ip[64];
    int server_port;
    char local_ip[64];
    int sip_port; /* 0 = any */
    char domain[128];
    struct user_set callers, callees;
    bool have_callees;
    char to[64]; /* number dialled (ivr, queue) */
    double rate; /* calls (or registrations) a second */
    int max_calls;
    double duration_s;  /* stop placing calls after this */
    int max_concurrent; /* 0 = no cap */
    struct dist hold;   /* seconds from answer to BYE */
    char dtmf[16];      /* digits sent after the answer (ivr) */
    int dtmf_delay_ms;  /* from the answer */
    double setup_timeout_s;
    double reg_rate;
    int reg_expires;
    double refresh_s;    /* register scenario: re-REGISTER period; 0 = none */
    char login_code[16]; /* dialled by each callee after it registers, e.g. *50 */
    int answer_delay_ms; /* callees ring this long before answering */
    int caller_hz, callee_hz;
    bool expect_tone; /* callers must hear the callee's tone (queue, bridge) */
    int min_audio_ms; /* received audio needed to count as "heard" */
    int late_ms;      /* a packet this much later than its predecessor's pace is late */
    int rtp_threads;
    bool realtime;     /* RTP threads SCHED_FIFO */
    double max_time_s; /* hard limit on the whole run; 0 = derived */
    bool json;
    bool verbose;
};

extern struct load_opts O;

int users_count(const struct user_set *u);
/* The login/password/extension of number i of a set, into out (size n). */
void user_field(const char *pattern, int i, char *out, size_t n);

double dist_draw(const struct dist *d);
double dist_max(const struct dist *d);

int64_t now_us(void); /* CLOCK_MONOTONIC */

/* ------------------------------------------------------------ RTP engine */

struct rtp_sess;

enum rtp_role { ROLE_CALLER = 0, ROLE_CALLEE = 1 };

/* realtime: run the threads SCHED_FIFO (as the platform's media workers do). */
int rtp_engine_start(int threads, int late_ms, bool realtime);
bool rtp_engine_realtime_refused(void);
/* Stop the threads (every session is finished first) and fold their totals. */
void rtp_engine_stop(void);

/* A session with its socket bound now (so its port can go into SDP); owned
 * by the caller until rtp_start(), by the engine after it. */
struct rtp_sess *rtp_open(const char *local_ip, int *port);
/* Before rtp_start only: drop a session that never started. */
void rtp_discard(struct rtp_sess *s);
/* Hand the session to an engine thread: it sends tx_hz (0 = silence) with
 * RFC 4733 digits dtmf (payload type dtmf_pt) dtmf_delay_ms after the start,
 * and judges the audio it receives (energy; expect_hz when non-zero). */
void rtp_start(struct rtp_sess *s, const struct sockaddr_in *remote, enum rtp_role role, int tx_hz,
               int expect_hz, const char *dtmf, int dtmf_pt, int dtmf_delay_ms);
/* A re-offer moved the far end: any thread, any time after rtp_start. */
void rtp_set_remote(struct rtp_sess *s, const struct sockaddr_in *remote);
/* The call is over: the engine finishes the session and frees it. The
 * pointer must not be used after this. */
void rtp_stop(struct rtp_sess *s);

/* What the engine measured, over every session (valid after rtp_engine_stop). */
#define PDV_BUCKETS 2000 /* 0.1 ms buckets up to 200 ms */

struct rtp_role_totals {
    uint64_t sessions, judged, no_audio, no_tone;
};

struct rtp_totals {
    uint64_t rx_packets, rx_expected, rx_lost, rx_late, rx_dup, rx_bad;
    uint64_t tx_packets, tx_errors, dtmf_digits;
    uint64_t ticks, ticks_late, ticks_skipped;
    uint64_t ts_jumps;                  /* RTP timestamp jumps of more than 10 s within one SSRC */
    uint64_t pdv_hist[PDV_BUCKETS + 1]; /* |D(i-1,i)| per packet */
    double *jitter_ms;                  /* RFC 3550 J per session at its end */
    size_t njitter, capjitter;
    struct rtp_role_totals role[2];
};

extern struct rtp_totals RT;

/* ------------------------------------------------------------ audio */

void audio_init(void);
int16_t ulaw_decode(uint8_t u);
uint8_t ulaw_encode(int16_t s);
/* One second of a sine tone at hz (integer) in µ-law, 8000 bytes; NULL hz 0. */
const uint8_t *tone_table(int hz);
/* Energy and tone share of one 160-sample frame. */
void frame_analyse(const uint8_t *ulaw, int n, double coeff, double *mean_sq, double *tone_share);
double goertzel_coeff(int hz);

/* ------------------------------------------------------------ SIP side */

int sip_run(void); /* runs the scenario to its end; 0 when every call and registration passed */

/* ------------------------------------------------------------ report */

struct samples {
    double *v;
    size_t n, cap;
};

void samples_add(struct samples *s, double v);
double samples_pct(struct samples *s, double p); /* sorts in place */

struct cause {
    char what[96];
    uint64_t n;
};

struct sip_totals {
    uint64_t attempted, answered, completed, failed, throttled;
    uint64_t dtmf_calls;
    uint64_t reg_attempted, reg_ok, reg_failed, refresh_ok, refresh_failed;
    uint64_t callee_calls, callee_answered;
    uint64_t offers_free; /* queue: agent INVITEs timed while an agent was free */
    int peak_concurrent;
    struct samples setup_ms, reg_ms, refresh_ms, offer_ms;
    struct cause causes[32];
    int ncauses;
    double elapsed_s, cpu_s;
    double load1; /* load average at the start */
};

extern struct sip_totals ST;

/* Count n failures of one cause (the text is the key). */
void cause_add_n(uint64_t n, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
#define cause_add(...) cause_add_n(1, __VA_ARGS__)
void report_print(bool json);

#endif
