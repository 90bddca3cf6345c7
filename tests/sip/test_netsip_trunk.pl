#!/usr/bin/perl
# A carrier built from Net::SIP: a registrar and a called party behind
# Net::SIP::Authorize (digest, realm carrier.example, account acct/pw).
# The platform's trunk to it (made through the API, with registration):
#  - registers: the carrier's registrar holds acct's binding, passed digest;
#  - takes op101's call to 8123 out with the digits stripped (the carrier
#    is called at 123, the INVITE passed digest, the trunk's caller id shows);
#  - brings the carrier's call to the external number 74957770001 to op101,
#    the number's routed user, with the caller's number.
# op101 is a Net::SIP phone registered to the platform; everything runs on
# one Net::SIP event loop with a time limit on every wait.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/../lib";
use CwSip;
use IO::Socket::INET;
use Net::SIP;
use Net::SIP::Dispatcher::Eventloop;

my $failed = 0;
sub check {
    my ($ok, $what) = @_;
    print(($ok ? "ok   " : "FAIL ") . "$what\n");
    $failed++ unless $ok;
    return $ok;
}

my $d = CwSip::start(demo => 1, set => ['sip.keepalive=0']);
my $port = $d->{sip_port};
my @SA = ('sysadmin', 'Demo-sysadmin-1');
my $loop = Net::SIP::Dispatcher::Eventloop->new;

# run the loop until $cond->() holds or $secs pass
sub wait_for {
    my ($secs, $cond) = @_;
    my $end = time() + $secs;
    while (!$cond->()) {
        return 0 if time() >= $end;
        my $stop = 0;
        $loop->loop(0.2, \$stop);
    }
    return 1;
}

# a link of the carrier's receive chain that notes who presented credentials
package SeenAuth {
    sub new { my ($class) = @_; return bless { users => [] }, $class }
    sub receive {
        my ($self, $packet) = @_;
        return if $packet->is_response;
        my $a = $packet->get_header('authorization') // '';
        push @{ $self->{users} }, $packet->method . ' ' . ($a =~ /username="([^"]*)"/ ? $1 : '-');
        return;    # not handled: the chain goes on
    }
}

sub udp { IO::Socket::INET->new(Proto => 'udp', LocalAddr => '127.0.0.1', LocalPort => 0)
              or die "socket: $!" }

# ---- the carrier
my $psock = udp();
my $pport = $psock->sockport;
my $carrier = Net::SIP::Simple->new(loop => $loop, leg => Net::SIP::Leg->new(sock => $psock),
                                    from => 'sip:79161234567@carrier.example',
                                    domain => 'carrier.example');
my $registrar = Net::SIP::Registrar->new(dispatcher => $carrier->{dispatcher}, domain => '*',
                                         min_expires => 30, max_expires => 3600);
my (@carrier_invites, $carrier_in);
my $called = $carrier->listen(
    cb_create => sub {
        my ($call, $request) = @_;
        push @carrier_invites, $request;
        $carrier_in = $call;
        return 1;
    },
    init_media => $carrier->rtp('recv_echo'),
);
my $auth = $carrier->create_auth(user2pass => { acct => 'pw' }, realm => 'carrier.example');
my $seen = SeenAuth->new;
$carrier->create_chain([
    $seen,
    Net::SIP::ReceiveChain->new([$auth], methods => ['REGISTER', 'INVITE']),
    Net::SIP::ReceiveChain->new([$registrar], methods => ['REGISTER']),
    $called,
]);

# ---- op101's phone
my $op = Net::SIP::Simple->new(loop => $loop, leg => Net::SIP::Leg->new(sock => udp()),
                               from => 'sip:op101@demo.local', domain => 'demo.local',
                               outgoing_proxy => "127.0.0.1:$port",
                               registrar => "127.0.0.1:$port",
                               auth => ['op101', 'Demo-op101-1']);
my ($op_incoming, $op_in_call, $op_in_up, $op_bye) = (undef, undef, 0, 0);
$op->listen(
    cb_create => sub {
        my ($call, $request) = @_;
        $op_incoming = $request;
        $op_in_call = $call;
        return 1;
    },
    cb_established => sub { $op_in_up = 1 },
    recv_bye => sub { $op_bye++ },
    init_media => $op->rtp('recv_echo'),
);
my $op_reg;
$op->register(expires => 300, cb_final => sub { $op_reg = shift });

eval {
    check(wait_for(10, sub { defined $op_reg }) && $op_reg eq 'OK', 'op101 registers')
        or die "op101 did not register\n";

    # the trunk, registering with the carrier, and an external number routed to op101
    my $r = CwSip::api($d, @SA, 'POST', '/api/v1/domains/demo.local/trunks', {
        name => 'carrier', host => '127.0.0.1', port => $pport, login => 'acct',
        password => 'pw', realm => 'carrier.example', register => JSON::PP::true,
        register_expires => 300, caller_ids => ['74950001111'] });
    check($r->{status} == 201, "trunk created ($r->{status})") or die "no trunk\n";
    my $tid = $r->{json}{id};
    $r = CwSip::api($d, @SA, 'POST', '/api/v1/domains/demo.local/numbers',
                    { number => '74957770001', target => '101' });
    check($r->{status} == 201, "external number routed to 101 ($r->{status})");

    # 1. our REGISTER passes the carrier's digest
    check(wait_for(10, sub { my @b = $registrar->query('sip:acct@carrier.example'); @b > 0 }),
          'the carrier\'s registrar holds acct\'s binding');
    my @reg_auth = grep { /^REGISTER/ } @{ $seen->{users} };
    check(@reg_auth >= 2 && $reg_auth[0] eq 'REGISTER -' && $reg_auth[-1] eq 'REGISTER acct',
          "our REGISTER was challenged and passed with acct's digest (@reg_auth)");
    my $state = '';
    wait_for(5, sub {
        $state = CwSip::api($d, @SA, 'GET',
                            "/api/v1/domains/demo.local/trunks/$tid/status")->{json}{state};
        $state eq 'registered' });
    check($state eq 'registered', "the trunk's status says registered ($state)");

    # 2. op101 dials 8123: the carrier is called at 123, with digest and our caller id
    my ($out_final, $out_call) = (undef, undef);
    $out_call = $op->invite('sip:8123@demo.local', init_media => $op->rtp('recv_echo'),
                            recv_bye => sub { $op_bye++ },
                            cb_final => sub { $out_final = shift });
    check(wait_for(15, sub { defined $out_final }) && $out_final eq 'OK',
          'the carrier answers op101\'s outside call') or die "no outside call\n";
    my ($inv) = @carrier_invites;
    check(scalar($inv && $inv->uri =~ /^sip:123\@127\.0\.0\.1(?::\d+)?(?:;|\z)/),
          'the carrier is called at the stripped number: ' . ($inv ? $inv->uri : '-'));
    my @inv_auth = grep { /^INVITE/ } @{ $seen->{users} };
    check("@inv_auth" eq 'INVITE - INVITE acct',
          "the carrier challenged the INVITE and acct's digest passed (@inv_auth)");
    check(scalar($inv && ($inv->get_header('from') // '') =~ /sip:74950001111\@/),
          'the trunk\'s caller id is shown: ' . ($inv ? $inv->get_header('from') : '-'));
    my $byes = $op_bye;
    $carrier_in->bye;
    check(wait_for(5, sub { $op_bye > $byes }), 'the carrier hangs up: op101 gets BYE');

    # 3. the carrier calls the external number: op101 rings and answers
    my $in_final;
    my $ccall = $carrier->invite('sip:74957770001@127.0.0.1:' . $port,
                                 init_media => $carrier->rtp('recv_echo'),
                                 cb_final => sub { $in_final = shift });
    check(wait_for(15, sub { defined $in_final }) && $in_final eq 'OK',
          'the carrier\'s call to 74957770001 is answered');
    check(scalar($op_incoming && ($op_incoming->get_header('from') // '') =~ /79161234567/),
          'op101 gets the call, from the caller\'s number: '
          . ($op_incoming ? $op_incoming->get_header('from') : '-'));
    check(wait_for(5, sub { $op_in_up }), 'op101\'s phone is connected');
    $byes = $op_bye;
    $ccall->bye;
    check(wait_for(5, sub { $op_bye > $byes }), 'the carrier hangs up: op101 gets BYE');

    # call records are written in batches: wait for the second one
    my $rows = [];
    wait_for(5, sub {
        $rows = CwSip::sql($d, "SELECT direction, trunk, b_number FROM cdrs ORDER BY start_ms");
        @$rows >= 2;
    });
    my @dirs = map { $_->[0] } @$rows;
    check(@$rows == 2 && $dirs[0] eq 'outgoing' && $dirs[1] eq 'incoming'
          && $rows->[0][1] eq "$tid",
          'both calls are in the history through the trunk: '
          . join(' ', map { join('/', map { $_ // '-' } @$_) } @$rows));
    1;
} or check(0, "test aborted: $@");

$op->cleanup;
$carrier->cleanup;
CwSip::stop($d);
exit($failed ? 1 : 0);
