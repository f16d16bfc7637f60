package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"chat/protocol"
	"chat/server/internal/session"
)

// config is everything the server can be told, by flag or environment.
type config struct {
	tcp             string
	data            string
	sync            string
	history         int
	maxText         int
	maxName         int
	maxRoom         int
	maxRooms        int
	maxFrame        int
	queue           int
	ping            time.Duration
	handshake       time.Duration
	shutdownTimeout time.Duration
	logFormat       string
	logLevel        string
	version         bool
}

// envName is the environment variable for a flag: -max-text is CHAT_MAX_TEXT.
func envName(flagName string) string {
	return "CHAT_" + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

// parseConfig reads flags and, for flags not given, CHAT_* variables.
func parseConfig(args []string, getenv func(string) string, stderr io.Writer) (*config, error) {
	c := &config{}
	fs := flag.NewFlagSet("chat-server", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&c.tcp, "tcp", ":7878", "TCP listen `address`")
	fs.StringVar(&c.data, "data", "chat-data", "data `directory` (created if missing); history is in chat.db there")
	fs.StringVar(&c.sync, "sync", "full", "disk sync: full (an acknowledged message survives power loss) or normal (survives a crash, faster)")
	fs.IntVar(&c.history, "history", 100, "messages a client gets when it joins without a resume point")
	fs.IntVar(&c.maxText, "max-text", protocol.DefaultMaxText, "longest message, in `bytes`")
	fs.IntVar(&c.maxName, "max-name", protocol.DefaultMaxName, "longest member name, in `bytes`")
	fs.IntVar(&c.maxRoom, "max-room", protocol.DefaultMaxRoom, "longest room name, in `bytes`")
	fs.IntVar(&c.maxRooms, "max-rooms", protocol.DefaultMaxRooms, "rooms one connection may be in")
	fs.IntVar(&c.maxFrame, "max-frame", protocol.DefaultMaxClientFrame, "longest frame accepted from clients, in `bytes`")
	fs.IntVar(&c.queue, "send-queue", 4096, "frames queued for a client before it is cut off as too slow")
	fs.DurationVar(&c.ping, "ping", 30*time.Second, "keepalive interval; silent connections are dropped after 1.5x this")
	fs.DurationVar(&c.handshake, "handshake-timeout", 10*time.Second, "time a new connection has to say HELLO")
	fs.DurationVar(&c.shutdownTimeout, "shutdown-timeout", 10*time.Second, "time given to clients to be told and disconnected on shutdown")
	fs.StringVar(&c.logFormat, "log-format", "text", "log format: text or json")
	fs.StringVar(&c.logLevel, "log-level", "info", "log level: debug, info, warn or error")
	fs.BoolVar(&c.version, "version", false, "print the version and exit")
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: chat-server [flags]\n\nRuns the chat server. Every flag can also be set by the environment variable shown.\n\n")
		fs.VisitAll(func(f *flag.Flag) {
			name, usage := flag.UnquoteUsage(f)
			fmt.Fprintf(fs.Output(), "  -%s %s\n    \t%s (env %s", f.Name, name, usage, envName(f.Name))
			if f.DefValue != "" && f.DefValue != "false" {
				fmt.Fprintf(fs.Output(), ", default %q", f.DefValue)
			}
			fmt.Fprintln(fs.Output(), ")")
		})
	}
	var envErr error
	fs.VisitAll(func(f *flag.Flag) {
		if v := getenv(envName(f.Name)); v != "" {
			if err := fs.Set(f.Name, v); err != nil {
				envErr = errors.Join(envErr, fmt.Errorf("%s=%q: %v", envName(f.Name), v, err))
			}
		}
	})
	if envErr != nil {
		return nil, envErr
	}
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected argument %q (flags start with -)", fs.Arg(0))
	}
	return c, c.check()
}

func (c *config) check() error {
	var errs []error
	positive := func(name string, v int) {
		if v <= 0 {
			errs = append(errs, fmt.Errorf("-%s must be positive, not %d", name, v))
		}
	}
	positive("history", c.history)
	positive("max-text", c.maxText)
	positive("max-name", c.maxName)
	positive("max-room", c.maxRoom)
	positive("max-rooms", c.maxRooms)
	if c.queue < session.MinQueue {
		errs = append(errs, fmt.Errorf("-send-queue must be at least %d, not %d", session.MinQueue, c.queue))
	}
	if c.maxFrame < 64 || c.maxFrame > protocol.MaxFrame {
		errs = append(errs, fmt.Errorf("-max-frame must be between 64 and %d, not %d", protocol.MaxFrame, c.maxFrame))
	} else if need := c.maxText + c.maxRoom + protocol.MaxIDLen + 16; c.maxFrame < need {
		errs = append(errs, fmt.Errorf("-max-frame %d cannot carry a message of -max-text %d: make it at least %d", c.maxFrame, c.maxText, need))
	}
	if c.ping < 100*time.Millisecond {
		errs = append(errs, fmt.Errorf("-ping must be at least 100ms, not %v", c.ping))
	}
	if c.handshake <= 0 || c.shutdownTimeout <= 0 {
		errs = append(errs, errors.New("-handshake-timeout and -shutdown-timeout must be positive"))
	}
	switch c.sync {
	case "full", "normal":
	default:
		errs = append(errs, fmt.Errorf("-sync must be full or normal, not %q", c.sync))
	}
	switch c.logFormat {
	case "text", "json":
	default:
		errs = append(errs, fmt.Errorf("-log-format must be text or json, not %q", c.logFormat))
	}
	if c.tcp == "" {
		errs = append(errs, errors.New("-tcp is empty: there would be nothing to listen on"))
	}
	return errors.Join(errs...)
}

// defaultGetenv reads the process environment.
var defaultGetenv = os.Getenv
