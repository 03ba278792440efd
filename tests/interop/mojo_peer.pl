#!/usr/bin/perl
# Interop peer: Perl Mojolicious, a Mojo::UserAgent client or a
# Mojolicious::Lite WebSocket server.
# Usage: perl mojo_peer.pl client <url> | perl mojo_peer.pl server
# Follows the fixed script in _scenarios.ts: print OPEN, echo, obey
# "cmd:close <code> <reason>", print CLOSED <code> <reason>.
use strict;
use warnings;

# Mojo's default limit is 256 KiB; the scenarios send 8 MiB.
BEGIN { $ENV{MOJO_MAX_WEBSOCKET_SIZE} = 64 * 1024 * 1024 }
use Mojolicious::Lite -signatures;
use Mojo::IOLoop;
use Mojo::Server::Daemon;
use Mojo::UserAgent;
use Mojo::Util qw(decode);

binmode STDOUT, ':encoding(UTF-8)';
$| = 1;

sub echo ($tx) {
  print "OPEN ", ($tx->protocol // ''), "\n";
  # "text" and "binary" hand over the raw bytes; sending them back as such
  # keeps each message's type.
  $tx->on(text => sub ($tx, $bytes) {
    my $text = decode('UTF-8', $bytes);
    if ($text =~ /^cmd:close (\d+) (.*)$/s) {
      $tx->finish($1, $2);
    } else {
      $tx->send({text => $bytes});
    }
  });
  $tx->on(binary => sub ($tx, $bytes) { $tx->send({binary => $bytes}) });
  $tx->on(finish => sub ($tx, $code, $reason) {
    print "CLOSED ", ($code // ''), " ", ($reason // ''), "\n";
  });
}

my ($mode, $url) = @ARGV;
if ($mode eq 'client') {
  my $ua = Mojo::UserAgent->new(inactivity_timeout => 0);
  $ua->websocket($url => ['chat.v2', 'chat.v1'] => sub ($ua, $tx) {
    die "connect failed: " . ($tx->error->{message} // 'not a WebSocket') . "\n"
      unless $tx->is_websocket;
    echo($tx);
  });
  Mojo::IOLoop->start;
} else {
  websocket '/' => sub ($c) {
    $c->inactivity_timeout(0);
    $c->tx->with_protocols('chat.v1');
    echo($c->tx);
    $c->rendered(101);    # subscribing on the tx, not $c, sends no 101 by itself
  };
  my $daemon = Mojo::Server::Daemon->new(
    app    => app,
    listen => ['http://127.0.0.1:0'],
    silent => 1,
  );
  $daemon->start;
  print "READY ", $daemon->ports->[0], "\n";
  Mojo::IOLoop->start;
}
