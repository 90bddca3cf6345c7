/*
 * media_int.h - what the files of the media engine share with each other
 * (and with the unit tests): sample-level DSP, G.711, the jitter buffer,
 * RTP/RTCP helpers, RFC 4733 state machines, sound files and MOH streams.
 *
 * Nothing here is for other subsystems: they use media.h. Everything in this
 * header is plain data plus functions; thread rules are given per block.
 */
#ifndef CW_MEDIA_INT_H
#define CW_MEDIA_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define MEDIA_RATE  8000
#define MEDIA_FRAME 160 /* samples in the 20 ms tick */

/* ---- G.711 (pure functions, any thread) ---- */
uint8_t g711_ulaw_encode(int16_t s);
int16_t g711_ulaw_decode(uint8_t u);
uint8_t g711_alaw_encode(int16_t s);
int16_t g711_alaw_decode(uint8_t a);
/* codec is MEDIA_PCMU or MEDIA_PCMA */
void g711_encode_frame(int codec, const int16_t *in, uint8_t *out, int n);
void g711_decode_frame(int codec, const uint8_t *in, int16_t *out, int n);

/* ---- sample DSP (pure functions, any thread) ---- */
/* Add n samples into a 32-bit accumulator; clip the accumulator into out. */
void dsp_mix_add(int32_t *acc, const int16_t *in, int n);
void dsp_mix_clip(int16_t *out, const int32_t *acc, int n);
static inline int16_t dsp_clip16(int32_t v)
{
    return v > 32767 ? 32767 : v < -32768 ? -32768 : (int16_t)v;
}
/* Mean power of a frame in dB relative to a full-scale square wave
 * (-100 for digital silence). */
double dsp_power_dbov(const int16_t *in, int n);
/* Peak amplitude of a sine at level dBm0 (G.711: 0 dBm0 is 3.14 dB below full scale). */
double dsp_dbm0_amplitude(double dbm0);
/*
 * Resample mono 16-bit audio from in_rate to out_rate with a windowed-sinc
 * low-pass (band-limited to 0.45 of the lower rate). Returns a cw_malloc'ed
 * buffer (caller frees) and its length.
 */
int16_t *dsp_resample(const int16_t *in, size_t n, int in_rate, int out_rate, size_t *out_n);
/* Goertzel power of one frequency over a block, normalised to the block's power
 * (1.0 = all energy at f). Used by tests and by the bench. */
double dsp_goertzel_ratio(const int16_t *in, int n, double f, int rate);

/* ---- tones (worker-local state) ---- */
struct tone_seg {
    uint16_t f1, f2; /* Hz; 0 = none (silence when both 0) */
    uint16_t ms;
};
struct tone_plan {
    const struct tone_seg *segs;
    int nsegs;
    bool repeat;
    double level_dbm0; /* per frequency */
};
struct tone_gen {
    const struct tone_plan *plan;
    int seg;
    int seg_pos;       /* samples into the segment */
    uint32_t ph1, ph2; /* phase accumulators */
    int amp;
    bool done;
};
/* The plan for a tone in a locale ("ru", "us"; unknown = "ru"); NULL if the tone is unknown. */
const struct tone_plan *tone_plan_for(const char *locale, int tone);
/* Conference join / leave cues. */
const struct tone_plan *tone_plan_join(void);
const struct tone_plan *tone_plan_leave(void);
void tone_gen_start(struct tone_gen *g, const struct tone_plan *p);
/* Fill n samples; returns false once a non-repeating plan has ended (rest zero). */
bool tone_gen_fill(struct tone_gen *g, int16_t *out, int n);

/* ---- packet-loss concealment: pitch-period repetition with fade-out ---- */
#define PLC_HIST 480 /* 60 ms of history */
#define PLC_OLA  40  /* crossfade when real audio comes back */
struct plc {
    int16_t hist[PLC_HIST]; /* the most recent sample last */
    int16_t period[160];
    int pitch, pos;
    int lost; /* samples concealed in the current gap */
};
void plc_reset(struct plc *p);
/* A real frame: smooths the seam after a gap and keeps the history. */
void plc_good(struct plc *p, int16_t *pcm, int n);
/* A lost frame: synthesised from the last pitch period, fading to silence after 60 ms. */
void plc_conceal(struct plc *p, int16_t *out, int n);

/* ---- jitter buffer (owned by one session on one worker) ---- */
#define JB_SIZE 4096 /* samples: 512 ms window */
enum jb_form { JB_EMPTY = 0, JB_ULAW, JB_ALAW, JB_LINEAR };
struct jbuf {
    /*
     * The ring of JB_SIZE samples, allocated by the first put: G.711 bytes
     * while every packet has come in one law (half the memory; decoding on
     * the way out gives the same samples), else 16-bit linear.
     */
    void *ring;
    enum jb_form form;
    uint64_t have[JB_SIZE / 64]; /* one bit a sample: received and not yet played */
    bool started, played;
    uint32_t play_ts;        /* RTP timestamp of the next sample to play */
    uint32_t max_end;        /* timestamp just past the newest sample received */
    int target;              /* playout delay aimed at, samples */
    int over_frames;         /* consecutive frames with too much buffered */
    int under_frames;        /* consecutive frames with nothing buffered */
    int64_t last_late_frame; /* frame counter at the last late packet */
    int64_t frames;
    bool plc_on;
    struct plc plc;
    uint64_t late, dup, concealed;
};
void jb_init(struct jbuf *jb, bool plc);
void jb_free(struct jbuf *jb);
void jb_reset(struct jbuf *jb);
enum { JB_OK = 0, JB_LATE = 1, JB_DUP = 2, JB_RESYNC = 3 };
int jb_put(struct jbuf *jb, uint32_t ts, const int16_t *pcm, int n);
/* The same for a G.711 payload (codec MEDIA_PCMU or MEDIA_PCMA), kept undecoded. */
int jb_put_g711(struct jbuf *jb, uint32_t ts, int codec, const uint8_t *payload, int n);
/* One frame for playout: 1 = real audio, 0 = concealed or partly missing,
 * -1 = nothing received yet (silence). */
int jb_get(struct jbuf *jb, int16_t *out, int n);

/* ---- RTP (pure helpers) ---- */
struct rtp_hdr {
    int pt;
    bool marker;
    uint16_t seq;
    uint32_t ts, ssrc;
    const uint8_t *payload;
    int len;
};
/* Parse a datagram: 0 or CW_EINVAL (not RTP v2, bad CSRC/extension/padding lengths). */
int rtp_parse(const uint8_t *buf, int len, struct rtp_hdr *h);
int rtp_write_header(uint8_t *buf, int pt, bool marker, uint16_t seq, uint32_t ts, uint32_t ssrc);

/*
 * What an RTCP compound packet (RFC 3550 6.4) tells us: the middle 32 bits
 * of the NTP time of the last sender report (for our LSR), and the report
 * block about our own stream (ssrc), if any.
 */
struct rtcp_info {
    bool has_sr;
    uint32_t sr_mid;
    bool has_block;
    double loss;     /* fraction lost, 0..1 */
    uint32_t jitter; /* interarrival jitter, timestamp units */
};
/* Parse a compound packet up to its first malformed part; 0, or CW_EINVAL when
 * nothing in it was RTCP v2. */
int rtcp_parse(const uint8_t *buf, int len, uint32_t our_ssrc, struct rtcp_info *out);

/* RFC 3550 receive statistics. */
struct rtp_rx_stats {
    bool init;
    uint16_t max_seq;
    uint32_t cycles, base_seq, bad_seq;
    uint32_t received, expected_prior, received_prior;
    int64_t last_transit; /* in timestamp units */
    bool have_transit;
    double jitter; /* timestamp units */
};
void rtp_stats_update(struct rtp_rx_stats *st, uint16_t seq, uint32_t ts, int64_t arrival_us);
uint32_t rtp_stats_expected(const struct rtp_rx_stats *st);
int64_t rtp_stats_lost(const struct rtp_rx_stats *st);

/* ---- RFC 4733 receive: digits from telephone-event packets ---- */
struct dtmf4733_rx {
    bool active;
    uint32_t ts;
    int event;
    int duration; /* samples */
    int64_t last_ms;
    bool have_ended;
    uint32_t ended_ts;
};
struct dtmf_digit {
    char digit;
    int ms;
};
/* Feed one telephone-event payload (len >= 4). Digits completed by it (its
 * end packet, or a new event while one was open whose end packets were lost)
 * go into out; returns how many (0..2). Repeated end packets are ignored. */
int dtmf4733_rx_packet(struct dtmf4733_rx *r, uint32_t ts, const uint8_t *p, int len,
                       int64_t now_ms, struct dtmf_digit out[2]);
/* Close an event whose end packets were all lost (no packet for 150 ms): 0 or 1. */
int dtmf4733_rx_poll(struct dtmf4733_rx *r, int64_t now_ms, struct dtmf_digit *out);
int dtmf_event_code(char digit); /* -1 if not a DTMF character */
char dtmf_event_char(int code);  /* 0 if not 0..15 */

/* ---- sound files (any thread; the cache is shared and locked inside) ---- */
struct sound {
    int refs;     /* atomic */
    int16_t *pcm; /* 8 kHz mono */
    size_t n;
    char *path;
};
/*
 * Load a sound as 8 kHz mono 16-bit: WAV (PCM 8/16/24/32-bit, float, G.711)
 * at any rate and channel count, or MP3. Files that need conversion are
 * converted once and kept under <var_dir>/cache/sounds; loaded sounds are
 * shared in memory. Returns a reference (sound_unref) or NULL with err set.
 */
struct sound *sound_load(const char *path, char *err, size_t errlen);
void sound_unref(struct sound *s);
/* Resolve "lang/name", "name.wav" or an absolute path into dst. */
int sound_resolve(const char *name, char *dst, size_t dstlen);
/* Decode a whole file (WAV or MP3) to interleaved 16-bit samples. */
int sound_decode(const char *path, int16_t **pcm, size_t *frames, int *rate, int *channels,
                 char *format, size_t fmtlen, char *err, size_t errlen);
void sound_set_dirs(const char *sounds_dir, const char *var_dir);
/* True when sound_load(path) will be quick (cached in memory or on disk, or a
 * small file): a worker may load it inline; otherwise the loader thread does. */
bool sound_is_quick(const char *path);
void sound_cache_clear(void);

/* WAV writer: 16-bit PCM, 8 kHz, 1 or 2 channels; header fixed on close. */
struct wav_writer {
    FILE *f;
    int channels;
    uint32_t frames;
};
int wav_writer_open(struct wav_writer *w, const char *path, int channels, int rate);
int wav_writer_write(struct wav_writer *w, const int16_t *interleaved, int frames);
int wav_writer_close(struct wav_writer *w);

/* ---- music on hold: named shared streams (any thread, locked inside) ---- */
struct moh_stream;
int moh_define(const char *name, const char *const *files, int nfiles);
/* A reference to the stream (defined, or sounds_dir/moh/<name>.wav); NULL if none. */
struct moh_stream *moh_get(const char *name);
void moh_unref(struct moh_stream *m);
/* The frame every listener hears at time now_ms: pcm (160 samples) and the
 * same frame already encoded in µ-law and A-law. */
void moh_frame(struct moh_stream *m, int64_t now_ms, const int16_t **pcm, const uint8_t **ulaw,
               const uint8_t **alaw);
void moh_clear_all(void);
bool moh_is_loaded(const char *name);
/* Times a stream's files were decoded (tests: one decode per stream). */
int moh_decode_count(const char *name);

/* ---- engine-wide settings copied at media_init ---- */
struct media_settings {
    int rtp_timeout_s;
    bool realtime;
    char tone_locale[8];
    char sounds_dir[512];
    char var_dir[512];
};
extern struct media_settings media_cfg;

/* ---- the engine: core thread <-> workers (media.c, worker.c) ---- */
#include "loop/queue.h"
#include "media/media.h"

enum mcmd_op {
    CMD_ADD = 1, /* sess: a new session for this worker */
    CMD_REMOTE,  /* remote */
    CMD_CLOSE,
    CMD_PLAY, /* files, nfiles, bval = loop, tag */
    CMD_TONE, /* ival = tone, tag */
    CMD_MOH,  /* str = stream, tag */
    CMD_STOP,
    CMD_REC_START, /* str = path, bval = stereo, ival = max_s, ival2 = silence_s, tag */
    CMD_REC_PAUSE, /* bval */
    CMD_REC_STOP,
    CMD_DTMF,   /* ival = digit, ival2 = duration ms */
    CMD_BRIDGE, /* id, id2 */
    CMD_UNBRIDGE,
    CMD_CONF_JOIN, /* ival = room, flags */
    CMD_CONF_SET,  /* flags */
    CMD_CONF_LEAVE,
    CMD_SPY, /* id = supervisor, id2 = customer, id3 = agent, ival = mode */
    CMD_SPY_STOP,
    CMD_FAX,         /* str = tiff path, bval = send, ival = calling party, tag */
    CMD_TALK,        /* bval */
    CMD_CONF_RECORD, /* str = path (NULL = stop), tag, ival = the room asked for */
    CMD_MOVE,        /* to = target worker */
    CMD_EXPECT,      /* the session is on its way here: hold its commands */
    CMD_ADOPT,       /* sess arrives from another worker */
};

struct msession;
struct mcmd {
    cw_msg m; /* m.type = enum mcmd_op */
    media_id id, id2, id3;
    uint32_t tag;
    int ival, ival2;
    unsigned flags;
    bool bval;
    struct media_remote remote;
    char **files;
    int nfiles;
    char *str;
    struct msession *sess;
    int to;
    int64_t posted_us; /* CMD_MOVE/CMD_ADOPT: when the core asked for the move */
    int from_worker;   /* CMD_PLAY/CMD_MOH sent to the loader: where to return */
    uint32_t gen;      /* the session's playback generation when it was sent */
    bool preloaded;    /* back from the loader: files are converted and cached */
};

struct mcmd *mcmd_new(int op, media_id id);
void mcmd_free(struct mcmd *c);

/* Start n workers; stop joins them and frees every session left. */
int engine_start(int n);
void engine_stop(void);
int engine_workers(void);
void engine_post(int worker, struct mcmd *c);
/* The loader thread converts slow sound files off the workers' ticks. */
int loader_start(void);
void loader_stop(void);
void loader_post(struct mcmd *c);
/* A session around its bound sockets, handed to a worker with CMD_ADD. */
struct msession *engine_session_new(media_id id, int fd, int fd_rtcp, int port);
void engine_session_free(struct msession *s);
/* Workers report through this (media.c pushes it to the core thread). */
void engine_emit(const struct media_event *ev);
/* Ticks that ran late, over all workers (bench). */
uint64_t engine_late_ticks(void);
/* Sessions moved between workers, and the time from the core's request to
 * the session running on its new worker (bench). */
void engine_move_stats(uint64_t *moves, double *avg_us, double *max_us);

#endif
