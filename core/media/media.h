/*
 * media.h - the media engine: RTP sessions on worker threads.
 *
 * Sessions live on N worker threads (default one per core), each driven by a
 * 20 ms tick with batched socket I/O. Everything in this header is called
 * on the core thread and returns at once: commands go to the worker through
 * a queue, and what happens later (a digit, the end of a prompt, a timeout)
 * comes back as a media_event delivered to the handler given to
 * media_init(), also on the core thread. Workers never touch call state.
 *
 * A session is named by a media_id. The id stays valid until
 * media_session_close(); commands on an unknown id return CW_ENOENT.
 * Events of a session may still arrive after media_session_close() (a
 * PLAY_DONE with reason 1, a RECORD_DONE); MEDIA_EV_CLOSED is always its last.
 * Sessions of one call may sit on different workers; bridges, conference
 * rooms and listen/whisper/barge work across workers: the engine moves a
 * session to its partner's worker when they join (open the second leg of a
 * call with near = the first to avoid even that).
 *
 * Start-up (core thread, after loop_init()): fill a media_config from the
 * media.* keys, sounds_dir and var_dir, call media_init(); media_shutdown()
 * before loop_free().
 */
#ifndef CW_MEDIA_H
#define CW_MEDIA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef uint32_t media_id; /* 0 is never a valid session */

struct media_config {
    int workers;          /* 0 = one per core */
    int rtp_min, rtp_max; /* even ports from this range; RTCP on port+1 */
    char ip[64];          /* local address to bind RTP to */
    int rtp_timeout_s;    /* 0 = never time out */
    char sounds_dir[512]; /* generated prompt sets: <dir>/<lang>/<name>.wav */
    char var_dir[512];    /* cache of resampled files, recordings */
    char tone_locale[8];  /* "ru" or "us" */
    bool realtime;        /* workers SCHED_FIFO, else nice -10 (both need CAP_SYS_NICE) */
    int max_sessions;     /* media_session_open() says CW_EBUSY beyond this; 0 = no limit */
};

/* Codecs the engine speaks, by RTP payload type. */
enum media_codec { MEDIA_PCMU = 0, MEDIA_PCMA = 8, MEDIA_G722 = 9 };

enum media_dtmf_mode {
    MEDIA_DTMF_AUTO = 0, /* RFC 4733 when negotiated, in-band detection as well */
    MEDIA_DTMF_RFC4733,
    MEDIA_DTMF_INBAND,
};

struct media_remote {
    char ip[64];
    int port;
    int pt;          /* chosen audio payload type (enum media_codec) */
    int dtmf_pt;     /* telephone-event payload type, 0 = none */
    int ptime;       /* ms, 20 if 0 */
    enum media_dtmf_mode dtmf_mode;
    bool send;       /* false while the remote holds us (sendonly/inactive from them) */
    bool recv;
};

enum media_tone {
    MEDIA_TONE_DIAL = 1,
    MEDIA_TONE_RINGBACK,
    MEDIA_TONE_BUSY,
    MEDIA_TONE_CONGESTION,
    MEDIA_TONE_CALL_WAITING,
    MEDIA_TONE_BEEP, /* short 1 kHz beep, e.g. before recording */
};

enum media_spy_mode {
    MEDIA_SPY_LISTEN = 1, /* supervisor hears both parties; nobody hears the supervisor */
    MEDIA_SPY_WHISPER,    /* supervisor hears both; only the agent hears the supervisor */
    MEDIA_SPY_BARGE,      /* all three hear each other */
};

enum media_event_type {
    MEDIA_EV_DTMF = 1,      /* digit, duration_ms */
    MEDIA_EV_PLAY_DONE,     /* tag; reason: 0 finished, 1 stopped, -1 file error */
    MEDIA_EV_RECORD_DONE,   /* tag; reason: 0 stopped, 1 max length, 2 silence; ms = length */
    MEDIA_EV_FAX_DONE,      /* tag; reason: 0 ok or a T.30 error code; pages, resolution */
    MEDIA_EV_TALK_START,    /* energy detector: the remote started talking */
    MEDIA_EV_TALK_STOP,
    MEDIA_EV_SILENCE,       /* no speech for the configured silence time while recording */
    MEDIA_EV_RTP_TIMEOUT,   /* no RTP for rtp_timeout_s */
    MEDIA_EV_CLOSED,        /* after media_session_close(): final stats below */
};

struct media_stats {
    uint64_t rx_packets, tx_packets, rx_lost, rx_late, rx_dup;
    double jitter_ms;      /* RFC 3550 interarrival jitter, as seen by us */
    double remote_loss;    /* fraction lost reported by the remote in RTCP RR, 0..1 */
    double remote_jitter_ms;
};

struct media_event {
    enum media_event_type type;
    media_id id;
    uint32_t tag;        /* the tag given with the command that caused it */
    char digit;          /* MEDIA_EV_DTMF: 0-9 * # A-D */
    int duration_ms;
    int reason;
    int64_t ms;          /* recording length */
    int pages;           /* fax */
    int resolution;      /* fax, dpi */
    struct media_stats stats; /* MEDIA_EV_CLOSED */
};

typedef void (*media_event_fn)(const struct media_event *ev, void *arg);

int media_init(const struct media_config *cfg, media_event_fn fn, void *arg);
void media_shutdown(void);

/*
 * Open a session: binds an RTP/RTCP port pair now (so the port can go into
 * SDP at once). near: put it on the same worker as this session (0 = any).
 */
int media_session_open(media_id near, media_id *out_id, int *out_port);
/* Called again on a re-INVITE. Symmetric RTP: the first packet's source is
 * latched (it may differ from r behind NAT) and packets from anywhere else are
 * dropped until a new address is set. send = false holds our audio, recv =
 * false ignores theirs. CW_EINVAL for an unknown codec, bad address or port. */
int media_session_set_remote(media_id id, const struct media_remote *r);
/* Close: stops everything, leaves bridges/rooms, emits MEDIA_EV_CLOSED. */
int media_session_close(media_id id);

/* Playback; a new play/tone/moh replaces the current one, which gets PLAY_DONE
 * with reason 1. files: absolute paths, or names resolved in sounds_dir as
 * "<lang>/<name>" (".wav" added when there is no extension; ".." refused).
 * WAV at any rate/channels and MP3 play; converted copies are cached in
 * var_dir/cache/sounds. A missing or bad file: PLAY_DONE with reason -1.
 * loop: repeat until stopped. Playback to a bridged party replaces what it
 * hears from the bridge until it ends. */
int media_play(media_id id, const char *const *files, int nfiles, bool loop, uint32_t tag);
int media_play_tone(media_id id, enum media_tone tone, uint32_t tag);
/* Music on hold: join the named shared stream (one decode for all listeners;
 * all hear the same point of the track). A stream not defined falls back to
 * sounds_dir/moh/<stream>.wav ("default" is generated at build time). */
int media_moh(media_id id, const char *stream, uint32_t tag);
int media_moh_define(const char *stream, const char *const *files, int nfiles);
/* Stop playback, tone or MOH. */
int media_stop(media_id id);

/* Recording: stereo puts this session's incoming audio on the left channel and
 * what it is sent (the other party) on the right; mono mixes both. 8 kHz
 * 16-bit WAV, header completed on stop. max_s/silence_s 0 = off. Ends with
 * RECORD_DONE (reason 0 stopped or closed, 1 max length, 2 silence after a
 * MEDIA_EV_SILENCE, -1 the file could not be written). Paused time is not
 * recorded and not counted. Export for download: media_export_mp3(). */
int media_record_start(media_id id, const char *path, bool stereo, int max_s, int silence_s,
                       uint32_t tag);
int media_record_pause(media_id id, bool paused);
int media_record_stop(media_id id);

/* Queue a digit (0-9 * # A-D) to send: RFC 4733 events when the remote
 * negotiated telephone-event (and the mode is not in-band), else tones in the
 * audio. duration clamped to 40..5000 ms (0 = 100). */
int media_send_dtmf(media_id id, char digit, int duration_ms);

/* Two-party bridge: a hears b and b hears a. Replaces playback on both and
 * takes both out of any room or earlier bridge. */
int media_bridge(media_id a, media_id b);
int media_unbridge(media_id a); /* unbridges a and its peer */

/* Conference rooms (up to 64 parties), created on first join, gone when empty.
 * Everyone hears the sum of the others (clipped), join/leave cue tones unless
 * NO_TONES, TALK_START/STOP events per member. A kick is media_conf_leave(). */
enum { MEDIA_CONF_MUTE = 1, MEDIA_CONF_DEAF = 2, MEDIA_CONF_NO_TONES = 4 };
int media_conf_join(media_id id, uint32_t room, unsigned flags);
int media_conf_set(media_id id, unsigned flags);
int media_conf_leave(media_id id);

/* Supervisor on a bridged pair: customer is one side, agent the other. The
 * mode may be changed by calling again; the supervisor leaves its own bridge
 * or room. Ends with media_spy_stop() or when any of the three closes. */
int media_spy(media_id supervisor, media_id customer, media_id agent, enum media_spy_mode mode);
int media_spy_stop(media_id supervisor);

/* Fax T.30 over G.711 (ECM, V.17/V.29/V.27ter): receive into a TIFF, send a
 * TIFF (F, G3/G4); ends with FAX_DONE: reason 0 or the T.30 error code,
 * pages, resolution in dpi. Playback and bridges stop while a fax runs. */
int media_fax_receive(media_id id, const char *tiff_path, uint32_t tag);
int media_fax_send(media_id id, const char *tiff_path, uint32_t tag);

/* Convert any supported sound file (WAV of any rate/channels, MP3) to the
 * engine's cached 8 kHz mono form; validates uploads. Blocking: call off the
 * hot path. Returns CW_EINVAL with a reason on a bad or unsupported file. */
int media_sound_check(const char *path, char *format, size_t fmtlen, int64_t *duration_ms,
                      char *err, size_t errlen);

/* Convert a recording (or any WAV/MP3) to MP3 for download with libmp3lame;
 * mono or stereo kept, kbps 0 = 32 (mono) / 48 (stereo). Blocking: call off
 * the hot path. Writes dst atomically (temp file + rename). */
int media_export_mp3(const char *src, const char *dst, int kbps, char *err, size_t errlen);

/* Talk detection (MEDIA_EV_TALK_START/STOP) for a session outside a
 * conference; conference members always have it. */
int media_talk_detect(media_id id, bool on);

/* "auto", "rfc4733" (or "rfc2833"), "inband" -> mode (config media.dtmf_mode, device
 * settings); CW_EINVAL for anything else. */
int media_dtmf_mode_parse(const char *name, enum media_dtmf_mode *out);

/* Counters for metrics. */
int media_active_sessions(void);
/* The worker a session is on (tests, diagnostics), or CW_ENOENT. */
int media_worker_of(media_id id);

#endif
