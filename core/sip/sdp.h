/*
 * sdp.h - the SDP we need: parse the first audio stream of an offer or
 * answer, negotiate codecs, and write our own. Pure functions, no state,
 * safe on any thread. Input comes from the network: every field is
 * bounds-checked, and nothing here trusts a length it did not measure.
 */
#ifndef CW_SDP_H
#define CW_SDP_H

#include <stdbool.h>
#include <stddef.h>

enum sdp_dir { SDP_SENDRECV = 0, SDP_SENDONLY, SDP_RECVONLY, SDP_INACTIVE };

struct sdp_codec {
    int pt;
    char name[16]; /* "PCMU", "PCMA", "telephone-event", ... */
    int rate;
};

#define SDP_MAX_CODECS 16

struct sdp_media {
    char addr[64];  /* connection address (media level, else session level) */
    int port;       /* 0 = stream rejected */
    int ncodecs;
    struct sdp_codec codecs[SDP_MAX_CODECS]; /* in offer order */
    int ptime;      /* 0 if absent */
    enum sdp_dir dir;
};

/* Parse; CW_EINVAL when there is no usable audio stream or the text is junk. */
int sdp_parse(const char *text, size_t len, struct sdp_media *out);

/*
 * Pick our codec from the remote's list (their order, among PCMU/PCMA and
 * any in `allowed`), and the telephone-event payload type (0 if absent).
 * *pt is the payload type as the remote numbered it. Returns CW_EINVAL when
 * nothing is common (answer with 488).
 */
int sdp_negotiate(const struct sdp_media *remote, const int *allowed, int nallowed, int *pt,
                  int *dtmf_pt);

struct sdp_local {
    const char *addr;
    int port;
    unsigned long long session_id, version;
    const int *pts;  /* audio payload types to offer/answer, in preference order */
    int npts;
    int dtmf_pt;     /* 0 = no telephone-event */
    int ptime;
    enum sdp_dir dir;
};

/* Write SDP; returns a malloc'd string. */
char *sdp_write(const struct sdp_local *l);

/* The direction we answer with when the remote offers dir. */
enum sdp_dir sdp_answer_dir(enum sdp_dir offered);
const char *sdp_dir_name(enum sdp_dir d); /* "sendrecv", ... */
/* True when a stream in this direction means "the far end holds the call". */
bool sdp_dir_is_hold(enum sdp_dir d);

/*
 * A copy of our own SDP text with every direction attribute replaced by
 * dir (one added to the audio stream when there was none) and, when
 * bump is set, the o= version incremented. Used by the SIP edge to answer
 * hold/unhold re-offers from the last SDP it sent. NULL when text has no
 * o= or m= line. Returns a malloc'd string.
 */
char *sdp_with_dir(const char *text, enum sdp_dir dir, bool bump);

#endif
