package broker

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/testcontainers/testcontainers-go"
	"github.com/testcontainers/testcontainers-go/modules/rabbitmq"
)

// ContainerConfig configures a container broker. The zero value is ready to
// use.
type ContainerConfig struct {
	// Image is the RabbitMQ image; "" means DefaultContainerImage.
	Image string
}

// DefaultContainerImage is the image a container broker runs by default.
const DefaultContainerImage = "rabbitmq:3.13-alpine"

// Container is a RabbitMQ node in a Docker container run by testcontainers.
// It does not implement Controller: a restarted container may come back on
// other host ports, which would break the URL every process was given.
type Container struct {
	c   *rabbitmq.RabbitMQContainer
	url string

	closeOnce sync.Once
	closeErr  error
}

// DockerAvailable reports, through testcontainers' own health check, whether
// a Docker engine answers. Its error says why not.
func DockerAvailable(ctx context.Context) (err error) {
	defer func() {
		// testcontainers panics on some broken Docker setups.
		if r := recover(); r != nil {
			err = fmt.Errorf("check docker: %v", r)
		}
	}()
	p, err := testcontainers.NewDockerProvider()
	if err != nil {
		return fmt.Errorf("connect to docker: %w", err)
	}
	// Health closes the provider.
	if err := p.Health(ctx); err != nil {
		return fmt.Errorf("check docker health: %w", err)
	}
	return nil
}

// StartContainer runs a RabbitMQ container and returns when it accepts AMQP
// connections. Failures wrap ErrUnavailable; nothing is left running.
func StartContainer(ctx context.Context, cfg ContainerConfig) (*Container, error) {
	if cfg.Image == "" {
		cfg.Image = DefaultContainerImage
	}
	if err := DockerAvailable(ctx); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	c, err := rabbitmq.Run(ctx, cfg.Image)
	if err != nil {
		return nil, fmt.Errorf("%w: run container %s: %w", ErrUnavailable, cfg.Image, errors.Join(err, terminate(c)))
	}
	u, err := c.AmqpURL(ctx)
	if err != nil {
		return nil, fmt.Errorf("%w: read container URL: %w", ErrUnavailable, errors.Join(err, terminate(c)))
	}
	u += "/"
	conn, err := Dial(ctx, u)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrUnavailable, errors.Join(err, terminate(c)))
	}
	if err := conn.Close(); err != nil {
		return nil, fmt.Errorf("%w: close probe connection: %w", ErrUnavailable, errors.Join(err, terminate(c)))
	}
	return &Container{c: c, url: u}, nil
}

func terminate(c *rabbitmq.RabbitMQContainer) error {
	if c == nil {
		return nil
	}
	if err := testcontainers.TerminateContainer(c); err != nil {
		return fmt.Errorf("terminate container: %w", err)
	}
	return nil
}

// URL implements Broker.
func (c *Container) URL() string { return c.url }

// Kind implements Broker.
func (c *Container) Kind() string { return KindContainer }

// Version implements Broker.
func (c *Container) Version(ctx context.Context) (string, error) {
	return ServerVersion(ctx, c.url)
}

// Close implements Broker: it terminates the container.
func (c *Container) Close(ctx context.Context) error {
	c.closeOnce.Do(func() {
		if err := c.c.Terminate(ctx); err != nil {
			c.closeErr = fmt.Errorf("terminate container: %w", err)
		}
	})
	return c.closeErr
}
